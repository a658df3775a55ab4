package sim

// Summary is r's figures as the keys of pexsim's -json output. With
// runtime false it leaves out what depends on the machine (wall seconds,
// peak heap), so that what remains is a function of the run's options:
// that is what the golden runs compare.
func (r *Result) Summary(runtime bool) map[string]any {
	out := map[string]any{
		"nodes":                       r.Nodes,
		"scenario":                    r.Scenario,
		"seed":                        r.Seed,
		"policy":                      r.Policy,
		"rounds_to_50":                r.Worst[0].Rounds,
		"rounds_to_90":                r.Worst[1].Rounds,
		"rounds_to_99":                r.Worst[2].Rounds,
		"rounds_to_100":               r.Worst[3].Rounds,
		"avg_rounds_to_99":            r.Avg[2].Rounds,
		"avg_addresses_to_50":         r.Avg[0].Addresses,
		"avg_addresses_to_90":         r.Avg[1].Addresses,
		"avg_addresses_to_99":         r.Avg[2].Addresses,
		"avg_addresses_to_100":        r.Avg[3].Addresses,
		"sim_seconds_to_99":           r.Worst[2].SimSeconds,
		"avg_sim_seconds_to_99":       r.Avg[2].SimSeconds,
		"p99_rounds_to_99":            r.P99[2].Rounds,
		"p99_sim_seconds_to_99":       r.P99[2].SimSeconds,
		"requests_per_node":           r.RequestsPerNode,
		"addresses_received_per_node": r.AddressesPerNode,
		"min_addresses_per_node":      r.MinAddressesPerNode,
		"bytes_received_per_node":     r.BytesPerNode,
		"min_bytes_per_node":          r.MinBytesPerNode,
		"size_estimate":               r.SizeEstimate,
		"true_size":                   r.TrueSize,
		"heal_sim_seconds":            r.HealSimSeconds,
		"sim_seconds":                 r.SimSeconds,
		"full_discovery_sim_seconds":  r.FullDiscoverySeconds,
		"full_discovery_requests":     r.FullDiscoveryRequests,
	}
	if runtime {
		out["wall_seconds"] = r.WallSeconds
		out["peak_heap_mb"] = r.PeakHeapMB
	}
	if r.Reference != nil {
		out["attackers"] = r.Attackers
		out["attacker_share_in_books"] = r.AttackerShareInBooks
		// eclipsed_nodes and eclipsed_nodes_max keep their meaning: every
		// connection to attackers (see Result); max_eclipsed_nodes is the
		// target's figure, outbound connections all to attackers.
		out["eclipsed_nodes"] = r.EclipsedNodes
		out["eclipsed_nodes_max"] = r.EclipsedNodesMax
		out["eclipsed_nodes_max_sim_seconds"] = r.EclipsedMaxSimSeconds
		out["peer_errors_per_node"] = r.PeerErrorsPerNode
		out["attack_groups"] = r.Groups
		out["cycle_identities"] = r.CycleIdentities
		out["spoof"] = r.Spoof
		out["junk"] = r.Junk
		out["max_attacker_share_in_books"] = r.MaxAttackerShareInBooks
		out["outbound_eclipsed_nodes"] = r.OutboundEclipsedNodes
		out["max_eclipsed_nodes"] = r.MaxEclipsedNodes
		out["max_fully_eclipsed_nodes"] = r.MaxFullyEclipsedNodes
		out["honest_worst_known"] = r.HonestWorstKnown
		out["spoof_dial_share"] = r.SpoofDialShare
		out["feeler_dials_per_node"] = r.FeelerDialsPerNode
		out["feeler_spoof_share"] = r.FeelerSpoofShare
		out["censored_nodes"] = r.CensoredNodes
		series := make([]map[string]any, len(r.Series))
		for i, x := range r.Series {
			series[i] = map[string]any{
				"sim_seconds":             x.SimSeconds,
				"attacker_share_in_books": x.AttackerShareInBooks,
				"eclipsed_nodes":          x.Eclipsed,
				"fully_eclipsed_nodes":    x.FullyEclipsed,
			}
		}
		out["attack_series"] = series
		out["without_attack"] = r.Reference.Summary(runtime)
	}
	return out
}
