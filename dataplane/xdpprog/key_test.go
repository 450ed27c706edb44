package xdpprog

import (
	"net/netip"
	"testing"
)

func TestEndpointKey(t *testing.T) {
	for _, tc := range []struct {
		e       Endpoint
		want    mapKey
		wantErr bool
	}{
		{
			e: Endpoint{Addr: netip.MustParseAddr("198.18.0.10"), Port: 80, Proto: protoTCP},
			want: mapKey{
				Addr: [16]byte{198, 18, 0, 10}, Port: [2]byte{0, 80}, Proto: protoTCP, Family: 4,
			},
		},
		{
			e: Endpoint{Addr: netip.MustParseAddr("::ffff:198.18.0.10"), Port: 0x1234, Proto: protoUDP},
			want: mapKey{
				Addr: [16]byte{198, 18, 0, 10}, Port: [2]byte{0x12, 0x34}, Proto: protoUDP, Family: 4,
			},
		},
		{
			e: Endpoint{Addr: netip.MustParseAddr("fd00::10"), Port: 443, Proto: protoTCP},
			want: mapKey{
				Addr: [16]byte{0: 0xfd, 15: 0x10}, Port: [2]byte{1, 187}, Proto: protoTCP, Family: 6,
			},
		},
		{e: Endpoint{Addr: netip.Addr{}, Port: 80, Proto: protoTCP}, wantErr: true},
		{e: Endpoint{Addr: netip.MustParseAddr("198.18.0.10"), Port: 80, Proto: 1}, wantErr: true},
		{e: Endpoint{Addr: netip.MustParseAddr("198.18.0.10"), Port: 80, Proto: 132}, wantErr: true},
	} {
		got, err := tc.e.key()
		if tc.wantErr {
			if err == nil {
				t.Errorf("%v: key() = %v, want error", tc.e, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: key(): %v", tc.e, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%v: key() = %+v, want %+v", tc.e, got, tc.want)
		}
		if back := got.endpoint(); back.Addr != tc.e.Addr.Unmap() || back.Port != tc.e.Port || back.Proto != tc.e.Proto {
			t.Errorf("%v: endpoint() = %v", tc.e, back)
		}
	}
}

func TestEndpointString(t *testing.T) {
	for _, tc := range []struct {
		e    Endpoint
		want string
	}{
		{Endpoint{Addr: netip.MustParseAddr("198.18.0.10"), Port: 80, Proto: protoTCP}, "tcp 198.18.0.10:80"},
		{Endpoint{Addr: netip.MustParseAddr("fd00::1"), Port: 53, Proto: protoUDP}, "udp [fd00::1]:53"},
		{Endpoint{Addr: netip.MustParseAddr("198.18.0.10"), Port: 0, Proto: 1}, "proto 1 198.18.0.10:0"},
	} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}
