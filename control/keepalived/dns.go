package keepalived

import (
	"errors"
	"fmt"
	"strings"
)

// dnsTypes are the query types keepalived's DNS_CHECK asks (RFC 1035,
// RFC 3596).
func dnsTypes() map[string]uint16 {
	return map[string]uint16{"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28}
}

// dnsQuery builds the query DNS_CHECK sends, as xvs's udp check sends it:
// a recursive query for name and type, and the question section, which
// every answer repeats and so is what the check expects in the reply.
// Every byte is below 0x80 (the query id is chosen so), which a string of
// the configuration file holds as it is.
func dnsQuery(name, typ string) (query, question string, err error) {
	t, ok := dnsTypes()[typ]
	if !ok {
		return "", "", fmt.Errorf("query type %s is not one of A, NS, CNAME, SOA, MX, TXT, AAAA", typ)
	}
	var q []byte
	name = strings.TrimSuffix(name, ".")
	if name != "" {
		for _, label := range strings.Split(name, ".") {
			if label == "" || len(label) > 63 {
				return "", "", errors.New("not a domain name")
			}
			for i := 0; i < len(label); i++ {
				if label[i] >= 0x80 || label[i] <= ' ' {
					return "", "", errors.New("not an ASCII domain name")
				}
			}
			q = append(q, byte(len(label)))
			q = append(q, label...)
		}
	}
	q = append(q, 0, byte(t>>8), byte(t), 0, 1) // type, class IN
	if len(q) > 255 {
		return "", "", errors.New("a domain name longer than 255 bytes")
	}
	// id 0x5856 ("XV"), flags: recursion desired; one question.
	header := []byte{0x58, 0x56, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	return string(append(header, q...)), string(q), nil
}
