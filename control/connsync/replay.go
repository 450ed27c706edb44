package connsync

// replayWindow accepts each sequence number at most once, and none more than windowSize below the
// highest accepted, as RFC 6479 (and WireGuard) do. A window rather than "above the highest" alone
// lets datagrams that UDP reordered, or that two of the sender's goroutines sent at once, through.
type replayWindow struct {
	last uint64
	ring [ringWords]uint64
}

const (
	ringWords  = 32
	windowSize = (ringWords - 1) * 64
)

// accept reports whether seq is new, and records it.
func (w *replayWindow) accept(seq uint64) bool {
	word := seq / 64
	if seq > w.last {
		cur := w.last / 64
		diff := word - cur
		if diff > ringWords {
			diff = ringWords
		}
		for i := cur + 1; i <= cur+diff; i++ {
			w.ring[i%ringWords] = 0
		}
		w.last = seq
	} else if w.last-seq > windowSize {
		return false
	}
	bit := uint64(1) << (seq % 64)
	old := w.ring[word%ringWords]
	w.ring[word%ringWords] = old | bit
	return old&bit == 0
}
