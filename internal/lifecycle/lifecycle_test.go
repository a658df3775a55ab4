package lifecycle

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pexnet/pex/internal/addr"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func group(t *testing.T, ip string) uint64 {
	t.Helper()
	a, err := addr.ParseNodeAddress("mconn://0123456789abcdef0123456789abcdef01234567@" + ip + ":26656")
	require.NoError(t, err)
	return addr.Group(a)
}

func TestBackoffDoublesToTheCap(t *testing.T) {
	s := NewSlots(Limits{MinRetryTime: time.Second, MaxRetryTime: 10 * time.Second})
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, s.Backoff(n))
	}
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}, got)
	require.Equal(t, 10*time.Second, s.Backoff(1000), "no overflow")
}

func TestSlotsCountAgainstTheLimits(t *testing.T) {
	s := NewSlots(Limits{MaxConnected: 3, MaxOutbound: 2, MaxOutboundPerGroup: 1})
	g := group(t, "11.1.0.1")
	require.False(t, s.GroupFull(g))
	s.Open()
	require.Equal(t, g, s.Dialled(g, false))
	require.True(t, s.GroupFull(g), "one outbound per group")
	require.False(t, s.OutboundFull())
	s.Open()
	require.Equal(t, addr.NoGroup, s.Dialled(g, true), "a persistent peer counts against no group")
	require.True(t, s.OutboundFull())
	s.Open()
	require.True(t, s.Full())
	s.Queue("a")
	require.False(t, s.Full(), "a peer queued to go frees its slot")
	id, ok := s.Next()
	require.True(t, ok)
	require.Equal(t, addr.NodeID("a"), id)
	_, ok = s.Next()
	require.False(t, ok)
	s.Undialled(g)
	require.False(t, s.GroupFull(g))
	require.Empty(t, s.OutGroups())
	private := group(t, "10.0.0.1")
	require.Equal(t, addr.NoGroup, s.Dialled(private, false), "unroutable addresses count against no group")
}

func TestBrokeLatelyExpires(t *testing.T) {
	s := NewSlots(Limits{MaxConnected: 2, MaxRetryTime: time.Minute})
	t0 := time.Unix(1_700_000_000, 0)
	g := group(t, "11.1.0.1")
	s.Broke(g, t0)
	require.True(t, s.BrokeLately(g, t0.Add(59*time.Second)))
	require.False(t, s.BrokeLately(g, t0.Add(time.Minute)))
	s.Broke(group(t, "10.0.0.1"), t0)
	require.False(t, s.BrokeLately(group(t, "10.0.0.1"), t0), "only public groups are remembered")
	// Bounded: past MaxConnected groups, all is forgotten.
	s.Broke(group(t, "11.2.0.1"), t0)
	s.Broke(group(t, "11.3.0.1"), t0)
	s.Broke(group(t, "11.4.0.1"), t0)
	require.False(t, s.BrokeLately(group(t, "11.2.0.1"), t0))
	require.True(t, s.BrokeLately(group(t, "11.4.0.1"), t0))
}

func TestPickTheBestOfTheFirstDue(t *testing.T) {
	scores := []int{5, 1, 9, 3, 7, 8, 2, 6}
	due := func(skip ...int) func(int) (int, bool) {
		return func(i int) (int, bool) {
			for _, s := range skip {
				if s == i {
					return 0, false
				}
			}
			return scores[i], true
		}
	}
	require.Equal(t, 2, Pick(8, 0, due()), "best of 0-3")
	require.Equal(t, 5, Pick(8, 4, due()), "best of 4-7")
	require.Equal(t, 2, Pick(8, 6, due(7)), "wraps round, skipping what is not due: 6, 0, 1 and 2 weighed")
	require.Equal(t, 0, Pick(8, 6, due(7, 2)), "and no further than four due: 6, 0, 1 and 3")
	require.Equal(t, -1, Pick(8, 3, due(0, 1, 2, 3, 4, 5, 6, 7)))
	require.Equal(t, 0, Pick(2, 0, func(int) (int, bool) { return 1, true }), "the first among equals")
}

func TestVictimComesFromTheBiggestGroup(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a, b := group(t, "11.1.0.1"), group(t, "12.1.0.1")
	cands := []Inbound{
		{ID: "h1", Group: a, Score: 0, ConnectedAt: t0},
		{ID: "s1", Group: b, Score: 5, ConnectedAt: t0},
		{ID: "s2", Group: b, Score: 5, ConnectedAt: t0.Add(time.Second)},
		{ID: "s3", Group: b, Score: 6, ConnectedAt: t0.Add(2 * time.Second)},
	}
	require.Equal(t, 2, Victim(cands, addr.NoGroup), "biggest group; lowest score; youngest among equals")
	// A newcomer of a's group makes it as big only with two more of it.
	cands = cands[:3]
	require.Equal(t, 0, Victim(cands, a), "a's group is as big with the newcomer: its lowest score goes")
	require.Equal(t, 2, Victim(cands, b))
	require.Equal(t, -1, Victim(nil, a))
	// Equal in every way but the ID: the highest goes.
	same := []Inbound{{ID: "x", Group: a, ConnectedAt: t0}, {ID: "y", Group: a, ConnectedAt: t0}}
	require.Equal(t, 1, Victim(same, addr.NoGroup))
}

func TestHangUpBackoffDoublesFromHangUpWait(t *testing.T) {
	s := NewSlots(Limits{MinRetryTime: time.Second, MaxRetryTime: time.Minute})
	var got []time.Duration
	for n := 1; n <= 4; n++ {
		got = append(got, s.HangUpBackoff(n))
	}
	require.Equal(t, []time.Duration{HangUpWait, 2 * HangUpWait, 4 * HangUpWait, time.Minute}, got)
	require.Equal(t, time.Minute, s.HangUpBackoff(MaxHangUps))
	long := NewSlots(Limits{MinRetryTime: time.Minute, MaxRetryTime: time.Hour})
	require.Equal(t, time.Minute, long.HangUpBackoff(1), "never shorter than MinRetryTime")
	short := NewSlots(Limits{MinRetryTime: time.Second, MaxRetryTime: 5 * time.Second})
	require.Equal(t, 5*time.Second, short.HangUpBackoff(1), "never longer than MaxRetryTime")
}
