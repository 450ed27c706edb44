package config

import (
	"fmt"
	"strings"
)

// writeHealth writes a service's health table with every field it has, so
// that Parse reads back the same HealthCheck.
func writeHealth(b *strings.Builder, s *Service, table string) {
	h := s.Health
	if h == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("  [%s.health]\n  check = %q\n  interval = %q\n  timeout = %q\n  rise = %d\n  fall = %d\n",
		table, h.Check, dur(h.Interval), dur(h.Timeout), h.Rise, h.Fall)
	if h.Port != 0 {
		w("  port = %d\n", h.Port)
	}
	switch h.Check {
	case HealthHTTP, HealthHTTPS:
		w("  path = %q\n  expect_status = %d\n", h.Path, h.ExpectStatus)
		if h.ExpectBody != "" {
			w("  expect_body = %q\n", h.ExpectBody)
		}
		if h.Host != "" {
			w("  host = %q\n", h.Host)
		}
		if h.Check == HealthHTTPS {
			w("  insecure = %v\n", h.Insecure)
		}
	case HealthUDP:
		w("  send = %q\n", h.Send)
		if h.Expect != "" {
			w("  expect = %q\n", h.Expect)
		}
	}
	w("  on_failure = %q\n  initial = %q\n", h.OnFailure, h.Initial)
}
