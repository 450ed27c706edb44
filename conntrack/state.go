package conntrack

import (
	"fmt"
	"time"
)

// IP protocol numbers the table treats specially.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// TCP header flag bits, as in the 14th byte of the TCP header.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagACK uint8 = 0x10
)

// Dir says which of an entry's keys a lookup matched.
type Dir uint8

const (
	DirOriginal Dir = iota // the forward key: client -> virtual service
	DirReply               // the reverse key: real server -> client (NAT, FullNAT)
)

func (d Dir) String() string {
	switch d {
	case DirOriginal:
		return "original"
	case DirReply:
		return "reply"
	}
	return fmt.Sprintf("Dir(%d)", uint8(d))
}

// PacketDir is the direction of a packet as IPVS's TCP state machine sees it.
type PacketDir uint8

const (
	Input     PacketDir = iota // client -> director
	Output                     // real server -> director, replies passing through it (NAT, FullNAT)
	InputOnly                  // client -> director where the director never sees replies (DR, TUN)
)

func (d PacketDir) String() string {
	switch d {
	case Input:
		return "input"
	case Output:
		return "output"
	case InputOnly:
		return "input-only"
	}
	return fmt.Sprintf("PacketDir(%d)", uint8(d))
}

// State is a connection state. The TCP states have IPVS's numbering (IP_VS_TCP_S_*); Normal and NormalICMP
// are the single states of UDP (and any other protocol) and of ICMP entries.
type State uint8

const (
	None State = iota
	Established
	SynSent
	SynRecv
	FinWait
	TimeWait
	Close
	CloseWait
	LastAck
	Listen
	SynAck
	Normal     // UDP and other non-TCP protocols; IPVS calls it "UDP"
	NormalICMP // ICMP and ICMPv6

	numStates
	numTCPStates = Normal
)

var stateNames = [numStates]string{
	None:        "NONE",
	Established: "ESTABLISHED",
	SynSent:     "SYN_SENT",
	SynRecv:     "SYN_RECV",
	FinWait:     "FIN_WAIT",
	TimeWait:    "TIME_WAIT",
	Close:       "CLOSE",
	CloseWait:   "CLOSE_WAIT",
	LastAck:     "LAST_ACK",
	Listen:      "LISTEN",
	SynAck:      "SYNACK",
	Normal:      "UDP",
	NormalICMP:  "ICMP",
}

// String returns the name ipvsadm -L -c prints for the state.
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Active reports whether the state counts as an active connection of its real server: only ESTABLISHED
// does, as in IPVS's classic accounting that the least-connection schedulers weigh.
func (s State) Active() bool { return s == Established }

// Flag classes, the middle index of tcpStates (IPVS's tcp_state_idx).
const (
	flagClassSYN = iota
	flagClassFIN
	flagClassACK
	flagClassRST
)

// tcpStates is IPVS's tcp_states table (net/netfilter/ipvs/ip_vs_proto_tcp.c, current mainline; not the
// secure_tcp tcp_states_dos variant): next state by packet direction, flag class and current state.
// Read only.
var tcpStates = [3][4][numTCPStates]State{
	Input: {
		// Columns: None, Established, SynSent, SynRecv, FinWait, TimeWait, Close, CloseWait, LastAck, Listen, SynAck.
		flagClassSYN: {SynRecv, Established, Established, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv},
		flagClassFIN: {Close, CloseWait, SynSent, TimeWait, TimeWait, TimeWait, Close, CloseWait, LastAck, Listen, TimeWait},
		flagClassACK: {Established, Established, SynSent, Established, FinWait, TimeWait, Close, CloseWait, Close, Listen, Established},
		flagClassRST: {Close, Close, Close, SynRecv, Close, Close, Close, Close, LastAck, Listen, SynRecv},
	},
	Output: {
		flagClassSYN: {SynSent, Established, SynSent, SynRecv, SynSent, SynSent, SynSent, SynSent, SynSent, Listen, SynRecv},
		flagClassFIN: {TimeWait, FinWait, SynSent, TimeWait, FinWait, TimeWait, Close, TimeWait, LastAck, Listen, TimeWait},
		flagClassACK: {Established, Established, SynSent, Established, FinWait, TimeWait, Close, CloseWait, LastAck, Established, Established},
		flagClassRST: {Close, Close, SynSent, Close, Close, TimeWait, Close, Close, Close, Close, Close},
	},
	InputOnly: {
		flagClassSYN: {SynRecv, Established, Established, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv},
		flagClassFIN: {Close, FinWait, SynSent, TimeWait, FinWait, TimeWait, Close, CloseWait, LastAck, Listen, TimeWait},
		flagClassACK: {Established, Established, SynSent, Established, FinWait, TimeWait, Close, CloseWait, Close, Listen, Established},
		flagClassRST: {Close, Close, Close, SynRecv, Close, Close, Close, Close, LastAck, Listen, Close},
	},
}

// tcpFlagClass picks the row as IPVS's tcp_state_idx does: rst > syn > fin > ack; -1 for none of them.
func tcpFlagClass(flags uint8) int {
	switch {
	case flags&FlagRST != 0:
		return flagClassRST
	case flags&FlagSYN != 0:
		return flagClassSYN
	case flags&FlagFIN != 0:
		return flagClassFIN
	case flags&FlagACK != 0:
		return flagClassACK
	}
	return -1
}

// nextTCPState is IPVS's set_tcp_state without the side effects: noOutput is the entry's
// IP_VS_CONN_F_NOOUTPUT flag (set for entries created by an InputOnly packet). It returns the new state and
// the new flag: an Output packet clears it, and while it is set Input packets use the INPUT_ONLY rows.
func nextTCPState(cur State, noOutput bool, flags uint8, dir PacketDir) (State, bool) {
	if dir > InputOnly {
		dir = Input
	}
	if noOutput {
		if dir == Output {
			noOutput = false
		} else {
			dir = InputOnly
		}
	}
	class := tcpFlagClass(flags)
	if class < 0 || cur >= numTCPStates {
		// IPVS moves a connection to CLOSE on a packet with none of the flags it classifies.
		return Close, noOutput
	}
	return tcpStates[dir][class][cur], noOutput
}

// Timeouts are the settable timeouts: the three of `ipvsadm --set` plus ICMP. The other TCP states have
// IPVS's fixed timeouts.
type Timeouts struct {
	TCP    time.Duration // ESTABLISHED
	TCPFin time.Duration // FIN_WAIT
	UDP    time.Duration // UDP and other non-TCP, non-ICMP protocols
	ICMP   time.Duration
}

// DefaultTimeouts returns IPVS's defaults: tcp 900 s, tcpfin 120 s, udp 300 s; icmp 60 s.
func DefaultTimeouts() Timeouts {
	return Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second, ICMP: 60 * time.Second}
}

// defaultStateTimeouts is IPVS's tcp_timeouts table plus the UDP and ICMP defaults.
func defaultStateTimeouts() [numStates]time.Duration {
	d := DefaultTimeouts()
	return [numStates]time.Duration{
		None:        2 * time.Second,
		Established: d.TCP,
		SynSent:     120 * time.Second,
		SynRecv:     60 * time.Second,
		FinWait:     d.TCPFin,
		TimeWait:    120 * time.Second,
		Close:       10 * time.Second,
		CloseWait:   60 * time.Second,
		LastAck:     30 * time.Second,
		Listen:      120 * time.Second,
		SynAck:      120 * time.Second,
		Normal:      d.UDP,
		NormalICMP:  d.ICMP,
	}
}

// initialState is the state an entry created by this packet starts in before its first transition.
func initialState(proto uint8) State {
	switch proto {
	case protoTCP:
		return None
	case protoICMP, protoICMPv6:
		return NormalICMP
	}
	return Normal
}
