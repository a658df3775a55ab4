// Package race runs one side of one pexrace configuration: a network of
// real CometBFT switches on loopback, every node on CometBFT's PEX or
// every node on pex, from a topology until every address book holds every
// node. The pexrace and pexcalib commands run it, each configuration in a
// process of its own (CometBFT's reactors leave goroutines behind that
// nothing waits for, and one run must not slow the next).
package race

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/cometbft/internal/testnet"
)

// Config is one side of one configuration.
type Config struct {
	Kind     testnet.Kind
	Period   time.Duration // CometBFT's ensure-peers period
	Topology testnet.Topology
	N        int
	Seed     uint64
	Timeout  time.Duration // give up after this long
	// Progress is how often a report goes to Log (0: never).
	Progress time.Duration
	Log      io.Writer // default os.Stderr
}

// Result is what a run measured.
type Result struct {
	Seed      uint64        `json:"seed"`
	Side      string        `json:"side"`
	Period    time.Duration `json:"period"`
	Topology  string        `json:"topology"`
	N         int           `json:"n"`
	Converged bool          `json:"converged"`
	Time      time.Duration `json:"time"`    // until every book held every node, or the timeout
	Missing   int           `json:"missing"` // book entries still missing at the end
	Requests  int64         `json:"requests"`
	Bytes     int64         `json:"bytes"`
}

// PexConfig is the configuration of the pex nodes at period: pex's
// defaults, what operators get, but below CometBFT's default 30 s period
// MinInterval is the period (matched: pex polls no faster than CometBFT).
func PexConfig(period time.Duration) pex.Config {
	var cfg pex.Config
	if period < 30*time.Second {
		cfg.MinInterval = period
	}
	return cfg
}

// Run builds the network, starts it and polls its books every 10 ms until
// every book holds every node or the timeout passes.
func Run(c Config) (Result, error) {
	log := c.Log
	if log == nil {
		log = os.Stderr
	}
	kinds := make([]testnet.Kind, c.N)
	for i := range kinds {
		kinds[i] = c.Kind
	}
	dir, err := os.MkdirTemp("", "pexrace")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	nw, err := testnet.New(kinds, testnet.Options{Period: c.Period, Pex: PexConfig(c.Period), Seed: c.Seed, Dir: dir})
	if err != nil {
		return Result{}, err
	}
	defer nw.Stop()
	if err := nw.Bootstrap(c.Topology); err != nil {
		return Result{}, err
	}
	r := Result{Seed: c.Seed, Side: c.Kind.String(), Period: c.Period, Topology: string(c.Topology), N: c.N}
	start := time.Now()
	if err := nw.Start(); err != nil {
		return Result{}, err
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	nextReport := start.Add(c.Progress)
	for {
		r.Missing = nw.Missing()
		r.Time = time.Since(start)
		if r.Missing == 0 {
			r.Converged = true
			break
		}
		if r.Time > c.Timeout {
			break
		}
		if c.Progress > 0 && time.Now().After(nextReport) {
			fmt.Fprintf(log, "  %s %s %s N=%d: %s, %d of %d book entries missing\n", r.Side, c.Period, c.Topology, c.N, r.Time.Round(time.Second), r.Missing, c.N*(c.N-1))
			nextReport = nextReport.Add(c.Progress)
		}
		<-tick.C
	}
	t := nw.Totals()
	r.Requests, r.Bytes = t.Requests, t.Bytes
	return r, nil
}

// Child runs self (this program, os.Executable) again with args, its
// standard error passed through, and decodes the JSON value its child
// mode writes to standard output into v (see Report): a process of its
// own for each configuration.
func Child(self string, args []string, v any) error {
	cmd := exec.Command(self, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return err
	}
	if err := json.NewDecoder(&out).Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("no result from child process")
		}
		return err
	}
	return nil
}

// Report is a child mode's end: v as JSON on standard output, or err on
// standard error and exit status 1.
func Report(name string, v any, err error) {
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(v)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
