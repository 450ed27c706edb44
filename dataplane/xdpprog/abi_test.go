package xdpprog

// Kernel ABI values the tests build frames and expectations from.
const (
	xdpPass     = 2
	xdpRedirect = 4

	icmpv4DestUnreach  = 3
	icmpv4SourceQuench = 4
	icmpv4TimeExceeded = 11
	icmpv4ParamProblem = 12

	icmpv6DestUnreach  = 1
	icmpv6PacketTooBig = 2
	icmpv6TimeExceeded = 3
	icmpv6ParamProblem = 4
)

const (
	ethHdrLen  = 14
	vlanHdrLen = 4
	ipv4MinLen = 20
	ipv6HdrLen = 40
	icmpHdrLen = 8
)
