package version

import (
	"runtime/debug"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}
	tests := []struct {
		stamp string
		info  *debug.BuildInfo
		ok    bool
		want  string
	}{
		{"v1.2.3-4-gabcdef", vcs, true, "v1.2.3-4-gabcdef"},
		{"", &debug.BuildInfo{Main: debug.Module{Version: "v0.5.0"}}, true, "v0.5.0"},
		{"", vcs, true, "devel-0123456789ab-dirty"},
		{"", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "devel"},
		{"", nil, false, "devel"},
	}
	for _, tt := range tests {
		if got := resolve(tt.stamp, tt.info, tt.ok); got != tt.want {
			t.Errorf("resolve(%q, %+v) = %q, want %q", tt.stamp, tt.info, got, tt.want)
		}
	}
	if String() == "" {
		t.Error("String() is empty")
	}
}
