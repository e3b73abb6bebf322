package lifecycle

// The two parents' readers of a PT's stdout, each written here from what that parent
// does, independently of quote.go, so that a test can check that every line ptreactor
// writes means the same thing to tor and to Arti.
//
// tor (src/feature/client/transports.c): a line is a keyword and the rest; LOG and STATUS
// take the rest as space-separated K=V pairs where a value is either a run of non-space
// bytes or a double-quoted CString (control-spec: C escapes \n \r \t \" \\ \' , \x plus
// two hex digits, one to three octal digits up to 255; a raw LF or NUL, or any other
// escape, is an error). The message of ENV-ERROR, PROXY-ERROR and the -ERROR lines is the
// raw rest of the line. CMETHOD and SMETHOD are split at whitespace; names must be C
// identifiers, the address an IP literal and a non-zero port.
//
// Arti (crates/tor-ptmgr, ipc.rs): the line must be UTF-8 (it is read into a Rust String),
// and is split at single spaces. A value in LOG and STATUS is a run up to the next space,
// or a CString in which backslash-n, -r and -t are LF, CR and TAB, backslash and a digit
// 0 to 8 is refused ("attempted unsupported octal escape code"), and backslash and any
// other character is that character. Older releases refuse a STATUS line without a
// TRANSPORT= that is a transport name; newer ones do not (the stricter rule is checked).
// A CMETHOD must be on a loopback address; SMETHOD ARGS are k=v pairs split at unescaped
// ',' with an unescaped '=' in a value refused. Any line Arti cannot parse fails the launch.

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// parentMsg is what a parent understood from one line: the keyword and named fields.
type parentMsg struct {
	keyword string
	fields  map[string]string
}

func (m parentMsg) String() string { return fmt.Sprintf("%s %q", m.keyword, m.fields) }

// checkBothParents fails the test unless tor and Arti both parse l and read the same text.
func checkBothParents(t *testing.T, l string) {
	t.Helper()
	tm, terr := torParse(l)
	am, aerr := artiParse(l)
	switch {
	case terr != nil:
		t.Errorf("tor cannot parse %q: %v", l, terr)
	case aerr != nil:
		t.Errorf("Arti cannot parse %q: %v", l, aerr)
	case !reflect.DeepEqual(tm, am):
		t.Errorf("tor and Arti read %q differently:\n tor:  %v\n Arti: %v", l, tm, am)
	}
}

// torKeywords are the keywords tor knows, longest first where one is a prefix of another
// (tor matches with strcmpstart).
var torKeywords = []string{"VERSION-ERROR", "VERSION", "ENV-ERROR", "CMETHOD-ERROR", "CMETHODS DONE", "CMETHOD",
	"SMETHOD-ERROR", "SMETHODS DONE", "SMETHOD", "PROXY DONE", "PROXY-ERROR", "LOG", "STATUS"}

func torParse(l string) (parentMsg, error) {
	if strings.ContainsAny(l, "\x00\n") {
		return parentMsg{}, errors.New("NUL or LF in the line")
	}
	kw := ""
	for _, k := range torKeywords {
		if l == k || strings.HasPrefix(l, k+" ") {
			kw = k
			break
		}
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(l, kw), " ")
	m := parentMsg{keyword: kw, fields: map[string]string{}}
	switch kw {
	case "":
		return m, errors.New("unknown keyword")
	case "VERSION":
		if rest != "1" {
			return m, errors.New("version is not 1")
		}
	case "CMETHODS DONE", "SMETHODS DONE", "PROXY DONE":
	case "VERSION-ERROR", "ENV-ERROR", "PROXY-ERROR", "CMETHOD-ERROR", "SMETHOD-ERROR":
		m.fields["text"] = rest
	case "CMETHOD", "SMETHOD":
		items := strings.Fields(rest)
		want := 2
		if kw == "CMETHOD" {
			want = 3
		}
		if len(items) < want || !torCIdentifier(items[0]) {
			return m, errors.New("too few items or a bad transport name")
		}
		m.fields["name"] = items[0]
		if kw == "CMETHOD" {
			if items[1] != "socks4" && items[1] != "socks5" {
				return m, errors.New("unknown proxy protocol")
			}
			m.fields["protocol"] = items[1]
			items = items[1:]
		}
		ap, err := netip.ParseAddrPort(items[1])
		if err != nil || ap.Port() == 0 {
			return m, fmt.Errorf("bad address %q", items[1])
		}
		m.fields["addr"] = ap.String()
		if kw == "SMETHOD" && len(items) > 2 && strings.HasPrefix(items[2], "ARGS:") {
			// tor copies the ARGS text into the bridge's extra-info; its meaning is
			// pt-spec's: k=v pairs joined by ',' with '=' and ',' escaped by a backslash.
			if err := specArgs(m.fields, strings.TrimPrefix(items[2], "ARGS:")); err != nil {
				return m, err
			}
		}
	case "LOG", "STATUS":
		kv, err := torKVLine(rest)
		if err != nil {
			return m, err
		}
		m.fields = kv
		if kw == "LOG" {
			switch kv["SEVERITY"] {
			case "error", "warning", "notice", "info", "debug":
			default:
				return m, errors.New("LOG without a valid SEVERITY")
			}
			if _, ok := kv["MESSAGE"]; !ok {
				return m, errors.New("LOG without MESSAGE")
			}
		}
	}
	return m, nil
}

// torCIdentifier is tor's string_is_C_identifier.
func torCIdentifier(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// torKVLine is kvline_parse with KV_QUOTED: K=V pairs separated by whitespace, V raw or a
// C-quoted string; every pair needs a non-empty key that would not need quoting.
func torKVLine(s string) (map[string]string, error) {
	const space = " \t\r\v\n"
	kv := map[string]string{}
	for {
		s = strings.TrimLeft(s, space)
		if s == "" {
			return kv, nil
		}
		i := strings.IndexAny(s, space+"=")
		if i <= 0 || s[i] != '=' {
			return nil, fmt.Errorf("no key=value at %q", s)
		}
		key := s[:i]
		for j := 0; j < len(key); j++ {
			if key[j] < 0x21 || key[j] > 0x7e || key[j] == '"' || key[j] == '\'' {
				return nil, fmt.Errorf("key %q needs quoting", key)
			}
		}
		s = s[i+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			var err error
			if val, s, err = torCString(s); err != nil {
				return nil, err
			}
		} else {
			j := strings.IndexAny(s, space)
			if j < 0 {
				j = len(s)
			}
			val, s = s[:j], s[j:]
		}
		if _, dup := kv[key]; !dup { // tor's config_line_find takes the first
			kv[key] = val
		}
	}
}

// torCString decodes the CString at the start of s and returns it and what follows.
func torCString(s string) (string, string, error) {
	var b []byte
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			if strings.IndexByte(string(b), 0) >= 0 {
				return "", "", errors.New("CString decodes to a NUL")
			}
			return string(b), s[i+1:], nil
		case c == 0 || c == '\n':
			return "", "", errors.New("raw NUL or LF in a CString")
		case c != '\\':
			b = append(b, c)
			continue
		}
		if i+1 >= len(s) {
			break
		}
		i++
		switch e := s[i]; {
		case e == 'n':
			b = append(b, '\n')
		case e == 'r':
			b = append(b, '\r')
		case e == 't':
			b = append(b, '\t')
		case e == '"' || e == '\\' || e == '\'':
			b = append(b, e)
		case e == 'x' || e == 'X':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", "", errors.New("bad \\x escape")
			}
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		case e >= '0' && e <= '7':
			n := int(e - '0')
			for k := 0; k < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; k++ {
				i++
				n = n*8 + int(s[i]-'0')
			}
			if n > 255 {
				return "", "", errors.New("octal escape above 255")
			}
			b = append(b, byte(n))
		default:
			return "", "", fmt.Errorf("unknown escape \\%c", e)
		}
	}
	return "", "", errors.New("unterminated CString")
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// specArgs reads SMETHOD ARGS as pt-spec 3.3.3 defines them into fields "arg:<key>".
func specArgs(fields map[string]string, s string) error {
	for s != "" {
		var k, v []byte
		cur, sawEq := &k, false
		i := 0
	item:
		for ; i < len(s); i++ {
			switch c := s[i]; c {
			case '\\':
				if i+1 >= len(s) {
					return errors.New("ARGS end in a backslash")
				}
				i++
				*cur = append(*cur, s[i])
			case '=':
				if sawEq {
					return errors.New("unescaped '=' in an ARGS value")
				}
				sawEq, cur = true, &v
			case ',':
				break item
			default:
				*cur = append(*cur, c)
			}
		}
		if !sawEq {
			return errors.New("ARGS item without '='")
		}
		fields["arg:"+string(k)] = string(v)
		if i >= len(s) {
			break
		}
		s = s[i+1:]
	}
	return nil
}

func artiParse(l string) (parentMsg, error) {
	m := parentMsg{fields: map[string]string{}}
	if !utf8.ValidString(l) {
		return m, errors.New("line is not UTF-8")
	}
	words := strings.Split(l, " ")
	next := func() (string, bool) {
		if len(words) == 0 {
			return "", false
		}
		w := words[0]
		words = words[1:]
		return w, true
	}
	first, _ := next()
	m.keyword = first
	switch first {
	case "VERSION":
		v, ok := next()
		if !ok || v != "1" {
			return m, errors.New("no version 1")
		}
	case "VERSION-ERROR", "ENV-ERROR", "PROXY-ERROR":
		m.fields["text"] = strings.Join(words, " ")
	case "CMETHOD-ERROR", "SMETHOD-ERROR":
		name, ok := next()
		if !ok || !artiTransportName(name) {
			return m, errors.New("bad transport ID")
		}
		m.fields["text"] = name + " " + strings.Join(words, " ")
	case "PROXY", "CMETHODS", "SMETHODS":
		if w, _ := next(); w != "DONE" {
			return m, errors.New("unknown line")
		}
		m.keyword = first + " DONE"
	case "CMETHOD", "SMETHOD":
		name, _ := next()
		if !artiTransportName(name) {
			return m, errors.New("bad transport ID")
		}
		m.fields["name"] = name
		if first == "CMETHOD" {
			proto, ok := next()
			if !ok {
				return m, errors.New("no protocol")
			}
			m.fields["protocol"] = proto
		}
		ep, _ := next()
		ap, err := netip.ParseAddrPort(ep)
		if err != nil || ap.Addr().Zone() != "" {
			return m, fmt.Errorf("failed to parse endpoint %q", ep)
		}
		if first == "CMETHOD" && !ap.Addr().IsLoopback() {
			return m, fmt.Errorf("CMETHOD endpoint %s was not localhost", ap)
		}
		m.fields["addr"] = ap.String()
		for _, opt := range words {
			if args, ok := strings.CutPrefix(opt, "ARGS:"); ok {
				if err := artiSMethodArgs(m.fields, args); err != nil {
					return m, err
				}
			}
		}
	case "LOG":
		sev, ok := next()
		if !ok || !strings.HasPrefix(sev, "SEVERITY=") {
			return m, errors.New("badly formatted severity")
		}
		m.fields["SEVERITY"] = strings.TrimPrefix(sev, "SEVERITY=")
		msg, ok := strings.CutPrefix(strings.Join(words, " "), "MESSAGE=")
		if !ok {
			return m, errors.New("no or badly formatted message")
		}
		v, _, err := artiValue(msg)
		if err != nil {
			return m, err
		}
		m.fields["MESSAGE"] = v
	case "STATUS":
		rest := strings.Join(words, " ")
		for rest != "" {
			k, after, ok := strings.Cut(rest, "=")
			if !ok || after == "" {
				return m, fmt.Errorf("no key=value in %q", rest)
			}
			v, after, err := artiValue(after)
			if err != nil {
				return m, err
			}
			if _, dup := m.fields[k]; !dup {
				m.fields[k] = v
			}
			rest = strings.TrimPrefix(after, " ")
		}
		if !artiTransportName(m.fields["TRANSPORT"]) {
			return m, errors.New("no TRANSPORT in STATUS, or a bad transport ID")
		}
	default:
		return m, errors.New("unknown line")
	}
	return m, nil
}

// artiTransportName is what Arti's PtTransportName accepts: a C identifier.
func artiTransportName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// artiValue is tor-ptmgr's parse_one_value: a CString, or a run up to the next space.
func artiValue(s string) (string, string, error) {
	if !strings.HasPrefix(s, `"`) {
		v, rest, _ := strings.Cut(s, " ")
		return v, rest, nil
	}
	var b strings.Builder
	rs := []rune(s[1:])
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '"':
			return b.String(), string(rs[i+1:]), nil
		case '\\':
			if i+1 >= len(rs) {
				return "", "", errors.New("encountered trailing backslash in CString")
			}
			i++
			switch e := rs[i]; {
			case e == 'n':
				b.WriteRune('\n')
			case e == 'r':
				b.WriteRune('\r')
			case e == 't':
				b.WriteRune('\t')
			case e >= '0' && e <= '8':
				return "", "", errors.New("attempted unsupported octal escape code")
			default:
				b.WriteRune(e)
			}
		default:
			b.WriteRune(r)
		}
	}
	return "", "", errors.New("ran out of input parsing CString")
}

// artiSMethodArgs is tor-ptmgr's parse_one_smethod_arg loop, into fields "arg:<key>".
func artiSMethodArgs(fields map[string]string, s string) error {
	rs := []rune(s)
	for len(rs) > 0 {
		var key, val []rune
		readingVal := false
		i := 0
	pair:
		for ; i < len(rs); i++ {
			target := &key
			if readingVal {
				target = &val
			}
			switch c := rs[i]; c {
			case '\\':
				if i+1 >= len(rs) {
					return errors.New("smethod arg terminates with backslash")
				}
				i++
				*target = append(*target, rs[i])
			case '=':
				if readingVal {
					return errors.New("encountered = while parsing value")
				}
				readingVal = true
			case ',':
				break pair
			default:
				*target = append(*target, c)
			}
		}
		if !readingVal {
			return errors.New("ran out of chars parsing smethod arg")
		}
		fields["arg:"+string(key)] = string(val)
		if i >= len(rs) {
			break
		}
		rs = rs[i+1:]
	}
	return nil
}

// The two readers themselves, on lines either may meet.
func TestParentGrammars(t *testing.T) {
	for _, c := range []struct {
		line     string
		tor      map[string]string // nil: tor refuses the line
		arti     map[string]string // nil: Arti refuses the line
		keyword  string
		sameText bool
	}{
		{`LOG SEVERITY=notice MESSAGE="a \"b\" \\ c\nd\té"`, map[string]string{"SEVERITY": "notice", "MESSAGE": "a \"b\" \\ c\nd\té"},
			map[string]string{"SEVERITY": "notice", "MESSAGE": "a \"b\" \\ c\nd\té"}, "LOG", true},
		{`LOG SEVERITY=error MESSAGE="x\042y"`, map[string]string{"SEVERITY": "error", "MESSAGE": `x"y`}, nil, "LOG", false},
		{`LOG SEVERITY=error MESSAGE="x\qy"`, nil, map[string]string{"SEVERITY": "error", "MESSAGE": "xqy"}, "LOG", false},
		{`STATUS TYPE=version IMPLEMENTATION="lyrebird" VERSION="0.5.0"`,
			map[string]string{"TYPE": "version", "IMPLEMENTATION": "lyrebird", "VERSION": "0.5.0"}, nil, "STATUS", false},
		{`STATUS TRANSPORT=obfs4 ADDRESS=198.51.100.222:2222 ERRSTR="Connection refused"`,
			map[string]string{"TRANSPORT": "obfs4", "ADDRESS": "198.51.100.222:2222", "ERRSTR": "Connection refused"},
			map[string]string{"TRANSPORT": "obfs4", "ADDRESS": "198.51.100.222:2222", "ERRSTR": "Connection refused"}, "STATUS", true},
		{"CMETHOD obfs4 socks5 192.0.2.1:1000", map[string]string{"name": "obfs4", "protocol": "socks5", "addr": "192.0.2.1:1000"}, nil, "CMETHOD", false},
		{`SMETHOD obfs4 [::]:443 ARGS:cert=a\=b\,c,iat-mode=0`, map[string]string{"name": "obfs4", "addr": "[::]:443", "arg:cert": "a=b,c", "arg:iat-mode": "0"},
			map[string]string{"name": "obfs4", "addr": "[::]:443", "arg:cert": "a=b,c", "arg:iat-mode": "0"}, "SMETHOD", true},
		{"ENV-ERROR bad \xff", map[string]string{"text": "bad \xff"}, nil, "ENV-ERROR", false},
	} {
		tm, terr := torParse(c.line)
		am, aerr := artiParse(c.line)
		if (terr == nil) != (c.tor != nil) || c.tor != nil && (tm.keyword != c.keyword || !reflect.DeepEqual(tm.fields, c.tor)) {
			t.Errorf("tor on %q: %v, %v; want %q", c.line, tm, terr, c.tor)
		}
		if (aerr == nil) != (c.arti != nil) || c.arti != nil && (am.keyword != c.keyword || !reflect.DeepEqual(am.fields, c.arti)) {
			t.Errorf("Arti on %q: %v, %v; want %q", c.line, am, aerr, c.arti)
		}
		if same := terr == nil && aerr == nil && reflect.DeepEqual(tm, am); same != c.sameText {
			t.Errorf("%q: same text %v, want %v", c.line, same, c.sameText)
		}
	}
}
