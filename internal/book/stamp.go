package book

import "time"

// stamp is a time the book keeps, in 8 bytes where a time.Time takes 24
// (an entry holds five): nanoseconds from the first time the book was
// given (its epoch), offset by stampBias, so that every time within
// stampBias (146 years) either side of the epoch has a positive stamp.
// The zero time's stamp is 0, below every other, as the zero time is
// before every other. Stamps are made with time.Time.Sub, which reads
// the monotonic clock when both times carry one, so two stamps compare
// as the times they came from; a time further than stampBias from the
// epoch is clamped (never the case for a clock's times). The book still
// reads no clock: the epoch is one of the times it is given.
type stamp int64

const stampBias = 1 << 62 // ns, about 146 years

// stamp returns t's stamp, taking t as the epoch if the book has none.
func (m *Book) stamp(t time.Time) stamp {
	if t.IsZero() {
		return 0
	}
	if !m.hasEpoch {
		m.epoch, m.hasEpoch = t, true
	}
	return stamp(min(max(t.Sub(m.epoch), 1-stampBias), stampBias-1) + stampBias)
}

// time returns the time of stamp s (equal to the one it was made from,
// by time.Time.Equal).
func (m *Book) time(s stamp) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return m.epoch.Add(time.Duration(s - stampBias))
}
