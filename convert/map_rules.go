package convert

import (
	"errors"
	"fmt"
	"strings"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/config/lang"
)

// ruleLanguage checks a rule line with halo's parser of HAProxy's
// language before it is written: a line halo's language does not speak
// (an action, fetch or converter it lacks) is dropped with a warning at
// its column, rather than left for halo check to refuse. text is the line
// from the source's word skip on.
func (m *proxyMapper) ruleLanguage(kw string, text string, skip int) bool {
	var err error
	shift := 0
	switch kw {
	case "http-request":
		_, err = lang.ParseRule(text, lang.HTTPRequest)
	case "http-response":
		_, err = lang.ParseRule(text, lang.HTTPResponse)
	case "redirect":
		shift = len("redirect ")
		_, err = lang.ParseRule("redirect "+text, lang.HTTPRequest)
	case "tcp-request":
		// The section's mode may come from defaults: either reading
		// will do, halo check then holds the line to the mode.
		if _, _, _, err = lang.ParseTCPRequest(text, true, config.ParseDuration); err != nil {
			_, _, _, err = lang.ParseTCPRequest(text, false, config.ParseDuration)
		}
	case "acl":
		_, err = lang.ParseACL(text, 0)
	case "use_backend":
		if _, err = lang.ParseTarget(text, lang.AtRequest, false); err != nil {
			_, err = lang.ParseTarget(text, lang.AtContent, false)
		}
	case "stick":
		_, err = lang.ParseStick(text)
	default:
		return true
	}
	if err == nil {
		return m.aclsKept(text)
	}
	msg := err.Error()
	var es lang.Errors
	if errors.As(err, &es) && len(es) > 0 {
		e := es[0]
		msg = e.Msg
		if len(m.st.Env) == 0 && skip < len(m.st.Words) {
			msg = fmt.Sprintf("%s (column %d)", e.Msg, m.st.Words[skip].Col+max(e.Off-shift, 0))
		}
	}
	if kw == "http-request" && strings.HasPrefix(text, "use-service prometheus-exporter") {
		msg += "; halo serves HAProxy's exporter metrics itself on a stats page: stats: {enable: true, prometheus: /metrics}"
	}
	m.warn("halo's rule language refuses the line: %s; dropped", msg)
	if kw == "acl" {
		if m.c.droppedACLs[m.sec] == nil {
			m.c.droppedACLs[m.sec] = map[string]bool{}
		}
		m.c.droppedACLs[m.sec][m.st.Words[1].Text] = true
	}
	return false
}

// aclsKept reports whether the line uses no ACL this section dropped,
// warning when it does: the line is dropped with its ACL.
func (m *proxyMapper) aclsKept(text string) bool {
	dropped := m.c.droppedACLs[m.sec]
	if len(dropped) == 0 {
		return true
	}
	ws, err := lang.Split(text)
	if err != nil {
		return true
	}
	for _, w := range ws {
		name := strings.TrimPrefix(w.Text, "!")
		if dropped[name] {
			m.warn("it uses ACL %q, which was dropped above; dropped", name)
			return false
		}
	}
	return true
}
