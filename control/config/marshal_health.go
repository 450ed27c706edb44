package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// healthFields are a health check's keys with their values as TOML writes
// them, every field it has, so that Parse reads back the same HealthCheck.
func healthFields(h *HealthCheck) [][2]string {
	q := strconv.Quote
	kv := [][2]string{{"check", q(h.Check)}, {"interval", q(dur(h.Interval))}, {"timeout", q(dur(h.Timeout))},
		{"rise", strconv.Itoa(h.Rise)}, {"fall", strconv.Itoa(h.Fall)}}
	if h.Port != 0 {
		kv = append(kv, [2]string{"port", strconv.Itoa(int(h.Port))})
	}
	switch h.Check {
	case HealthHTTP, HealthHTTPS:
		kv = append(kv, [2]string{"path", q(h.Path)}, [2]string{"expect_status", strconv.Itoa(h.ExpectStatus)})
		if h.ExpectBody != "" {
			kv = append(kv, [2]string{"expect_body", q(h.ExpectBody)})
		}
		if h.Host != "" {
			kv = append(kv, [2]string{"host", q(h.Host)})
		}
		if h.Check == HealthHTTPS {
			kv = append(kv, [2]string{"insecure", strconv.FormatBool(h.Insecure)})
		}
	case HealthUDP:
		kv = append(kv, [2]string{"send", q(h.Send)})
		if h.Expect != "" {
			kv = append(kv, [2]string{"expect", q(h.Expect)})
		}
	}
	return append(kv, [2]string{"on_failure", q(h.OnFailure)}, [2]string{"initial", q(h.Initial)})
}

// writeHealth writes a service's health table.
func writeHealth(b *strings.Builder, s *Service, table string) {
	if s.Health == nil {
		return
	}
	fmt.Fprintf(b, "  [%s.health]\n", table)
	for _, kv := range healthFields(s.Health) {
		fmt.Fprintf(b, "  %s = %s\n", kv[0], kv[1])
	}
}

// HealthInline writes h as the contents of a TOML inline table
// (`check = "tcp", interval = "2s", ...`), every field it has, which
// ParseHealth reads back: how xvsadm -S carries a health check (--health).
func HealthInline(h *HealthCheck) string {
	if h == nil {
		return ""
	}
	parts := make([]string, 0, 12)
	for _, kv := range healthFields(h) {
		parts = append(parts, kv[0]+" = "+kv[1])
	}
	return strings.Join(parts, ", ")
}

// ParseHealth reads a health check written as HealthInline writes it, with
// a [service.health] table's keys, defaults and checks; nil for check =
// "none". What needs the service (a port for real servers without one) is
// checked when the configuration that holds it is.
func ParseHealth(inline string) (*HealthCheck, error) {
	const name = "health"
	var doc map[string]any
	if _, err := toml.Decode("health = { "+inline+" }", &doc); err != nil {
		return nil, fmt.Errorf("health check %q is not a TOML inline table's contents: %w", inline, err)
	}
	m, _ := doc["health"].(map[string]any)
	d := &decoder{file: name}
	t := d.newTable("health", "health", m, keysOf("service.health")...)
	h := d.health(t, &Service{})
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return h, nil
}
