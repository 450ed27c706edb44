package health

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCounter(t *testing.T) {
	// Each case feeds results (+ success, - failure) and names the steps,
	// 0-based, after which the state flips.
	tests := []struct {
		name       string
		startUp    bool
		rise, fall int
		results    string
		flips      []int
	}{
		{"steady up", true, 2, 3, "++++++", nil},
		{"fall needs consecutive failures", true, 2, 3, "--+--+--+", nil},
		{"down at the third failure", true, 2, 3, "+---", []int{3}},
		{"up needs consecutive successes", false, 2, 3, "+-+-+-", nil},
		{"up at the second success", false, 2, 3, "-++", []int{2}},
		{"flaps", true, 2, 3, "+--+---+-++", []int{6, 10}},
		{"rise and fall of one", true, 1, 1, "-+-+", []int{0, 1, 2, 3}},
		{"success resets the failure run", true, 1, 2, "-+-+--", []int{5}},
		{"long fall", false, 1, 5, "+----+-----", []int{0, 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := counter{up: tc.startUp}
			var flips []int
			for i, r := range tc.results {
				was := c.up
				if c.observe(r == '+', tc.rise, tc.fall) {
					flips = append(flips, i)
					if c.up == was {
						t.Fatalf("step %d: flip reported but state stayed %v", i, was)
					}
				} else if c.up != was {
					t.Fatalf("step %d: state changed without a flip", i)
				}
			}
			if !slices.Equal(flips, tc.flips) {
				t.Errorf("flips at %v, want %v", flips, tc.flips)
			}
		})
	}
}

func TestSpecDefaults(t *testing.T) {
	tests := []struct {
		in, want Spec
	}{
		{Spec{Kind: KindTCP}, Spec{Kind: KindTCP, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3}},
		{Spec{Kind: KindTCP, Interval: time.Second}, Spec{Kind: KindTCP, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 3}},
		{Spec{Kind: KindHTTP, Rise: 1, Fall: 1}, Spec{Kind: KindHTTP, Interval: 2 * time.Second, Timeout: time.Second, Rise: 1, Fall: 1, Path: "/", ExpectStatus: 200}},
		{Spec{Kind: KindUDP}, Spec{Kind: KindUDP, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3, Send: []byte("xvs-health")}},
		{Spec{Kind: KindUDP, Send: []byte("x")}, Spec{Kind: KindUDP, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3, Send: []byte("x")}},
	}
	for _, tc := range tests {
		if got := tc.in.withDefaults(); !got.equal(tc.want) {
			t.Errorf("%+v.withDefaults() = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		err  string // "" = valid
	}{
		{"tcp defaults", Spec{Kind: KindTCP}, ""},
		{"https everything", Spec{Kind: KindHTTPS, Path: "/healthz?full=1", Host: "example.org:8443", ExpectStatus: 204, ExpectBody: "ok", Insecure: true}, ""},
		{"udp", Spec{Kind: KindUDP, Send: []byte("ping"), Expect: []byte("pong")}, ""},
		{"no kind", Spec{}, `unknown kind ""`},
		{"bad kind", Spec{Kind: "icmp"}, `unknown kind "icmp"`},
		{"timeout equals interval", Spec{Kind: KindTCP, Interval: time.Second, Timeout: time.Second}, "timeout 1s is not in (0, interval 1s)"},
		{"negative timeout", Spec{Kind: KindTCP, Timeout: -time.Second}, "timeout -1s"},
		{"negative interval", Spec{Kind: KindTCP, Interval: -time.Second}, "interval -1s is negative"},
		{"negative rise", Spec{Kind: KindTCP, Rise: -1}, "rise -1"},
		{"relative path", Spec{Kind: KindHTTP, Path: "healthz"}, "does not start with a single /"},
		{"scheme-relative path", Spec{Kind: KindHTTP, Path: "//evil/x"}, "does not start with a single /"},
		{"path with space", Spec{Kind: KindHTTP, Path: "/a b"}, "white space"},
		{"status", Spec{Kind: KindHTTP, ExpectStatus: 700}, "expected status 700"},
		{"host with slash", Spec{Kind: KindHTTP, Host: "a/b"}, `host "a/b"`},
		{"huge datagram", Spec{Kind: KindUDP, Send: make([]byte, 70000)}, "exceeds a datagram"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("Validate() = %v, want one containing %q", err, tc.err)
			}
		})
	}
}
