package authtoken

// BearerToken returns the token of an Authorization field value of the
// form `Bearer <token>` (RFC 6750 §2.1: the scheme in any case, one or more
// spaces, a b64token). The token is a substring of header: nothing is
// allocated. A missing credential or another scheme is ReasonMissing; a
// bearer credential that is empty, longer than MaxTokenBytes or holds
// characters outside b64token is ReasonMalformed.
func BearerToken(header string) (string, error) {
	const scheme = "bearer"
	if len(header) <= len(scheme) || !asciiEqualFold(header[:len(scheme)], scheme) || header[len(scheme)] != ' ' {
		return "", errMissing
	}
	i := len(scheme)
	for i < len(header) && header[i] == ' ' {
		i++
	}
	tok := header[i:]
	if len(tok) == 0 || len(tok) > MaxTokenBytes || !isB64Token(tok) {
		return "", errMalformed
	}
	return tok, nil
}

var (
	errMissing   = &Error{Reason: ReasonMissing}
	errMalformed = &Error{Reason: ReasonMalformed}
)

// isB64Token reports whether s is 1*( ALPHA / DIGIT / "-" / "." / "_" /
// "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	n := 0
	for n < len(s) && isB64Char(s[n]) {
		n++
	}
	if n == 0 {
		return false
	}
	for ; n < len(s); n++ {
		if s[n] != '=' {
			return false
		}
	}
	return true
}

func isB64Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// asciiEqualFold compares ASCII letters case-insensitively (want is lower
// case).
func asciiEqualFold(s, want string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}
