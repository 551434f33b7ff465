package loadtest

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/spark-edge/spark/internal/contract"
)

// city is a centre virtual users live around; their location updates jitter
// around it.
type city struct {
	lat, lng float64
}

var homeCities = []city{
	{35.6762, 139.6503}, {40.7128, -74.0060}, {51.5072, -0.1276}, {48.8566, 2.3522}, {-23.5505, -46.6333},
	{19.0760, 72.8777}, {6.5244, 3.3792}, {-33.8688, 151.2093}, {52.5200, 13.4050}, {19.4326, -99.1332},
}

// VU is a virtual user: a user id, its token and what it learnt from earlier
// responses (captures).
type VU struct {
	// ID is the user id (the token's sub).
	ID int64
	// Token is the bearer token sent with every request.
	Token string
	home  city
	users int64
	mu    sync.Mutex
	vars  map[string][]string
	seq   atomic.Int64
	// readAfter is the highest Spark-Read-After position the user was
	// given (0: none), sent on its following requests as the app does.
	readAfter atomic.Uint64
}

// ReadAfter returns the Spark-Read-After value the user sends ("" none).
func (v *VU) ReadAfter() string {
	if p := v.readAfter.Load(); p != 0 {
		return contract.FormatPosition(p)
	}
	return ""
}

// SawReadAfter keeps a response's Spark-Read-After value when it is past
// the one the user holds (responses of concurrent requests arrive in any
// order); a value that does not parse is ignored.
func (v *VU) SawReadAfter(field string) {
	p, err := contract.ParsePosition(strings.TrimSpace(field))
	if field == "" || err != nil {
		return
	}
	for {
		cur := v.readAfter.Load()
		if p <= cur || v.readAfter.CompareAndSwap(cur, p) {
			return
		}
	}
}

// NewVU returns a virtual user among users users.
func NewVU(id int64, token string, users int) *VU {
	h := fnv.New32a()
	_, _ = h.Write([]byte(strconv.FormatInt(id, 10)))
	return &VU{ID: id, Token: token, users: int64(users), home: homeCities[h.Sum32()%uint32(len(homeCities))], vars: map[string][]string{}}
}

// Set replaces a captured variable.
func (v *VU) Set(name string, values []string) {
	v.mu.Lock()
	v.vars[name] = values
	v.mu.Unlock()
}

// Get returns a captured variable.
func (v *VU) Get(name string) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.vars[name]
}

// MintToken returns an HS256 bearer token for user id, valid for ttl.
func MintToken(secret string, id int64, ttl time.Duration, now time.Time) (string, error) {
	c := jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(id, 10),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		Issuer:    "spark-loadtest",
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("mint token for user %d: %w", id, err)
	}
	return s, nil
}

// vuPool holds the virtual users, created (and their tokens minted) on first
// use, so a million users cost only what the run touches.
type vuPool struct {
	secret string
	ttl    time.Duration
	now    time.Time
	vus    []atomic.Pointer[VU]
}

func newVUPool(secret string, users int, ttl time.Duration, now time.Time) (*vuPool, error) {
	// Fail early on a secret that cannot sign.
	if _, err := MintToken(secret, 1, ttl, now); err != nil {
		return nil, err
	}
	return &vuPool{secret: secret, ttl: ttl, now: now, vus: make([]atomic.Pointer[VU], users)}, nil
}

func (p *vuPool) len() int { return len(p.vus) }

// get returns virtual user i (user id i+1).
func (p *vuPool) get(i int) *VU {
	if v := p.vus[i].Load(); v != nil {
		return v
	}
	// Signing cannot fail once it worked for the pool's first token.
	tok, _ := MintToken(p.secret, int64(i+1), p.ttl, p.now)
	v := NewVU(int64(i+1), tok, len(p.vus))
	if p.vus[i].CompareAndSwap(nil, v) {
		return v
	}
	return p.vus[i].Load()
}
