package origin

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/spark-edge/spark/origin/store"
)

// City is a seeding centre.
type City struct {
	Name     string
	Lat, Lng float64
	Weight   int // relative population
}

// cities are the centres demo and seed users cluster around. Suva (Fiji)
// sits near the antimeridian on purpose.
var cities = [...]City{
	{"Tokyo", 35.6762, 139.6503, 14}, {"New York", 40.7128, -74.0060, 9}, {"London", 51.5072, -0.1276, 8},
	{"Paris", 48.8566, 2.3522, 7}, {"São Paulo", -23.5505, -46.6333, 9}, {"Mumbai", 19.0760, 72.8777, 10},
	{"Lagos", 6.5244, 3.3792, 8}, {"Sydney", -33.8688, 151.2093, 5}, {"Berlin", 52.5200, 13.4050, 4},
	{"Mexico City", 19.4326, -99.1332, 9}, {"Madrid", 40.4168, -3.7038, 4}, {"Suva", -18.1416, 178.4415, 1},
}

var firstNames = []string{"Ana", "Ben", "Chloé", "Dev", "Emi", "Femi", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lena",
	"Max", "Nia", "Oli", "Pia", "Quinn", "Ravi", "Sol", "Tao", "Uma", "Vik", "Wen", "Yara", "Zoe"}

var bioBits = []string{"Coffee first.", "Weekend hiker.", "Dog person.", "Learning to cook ramen.", "Bookshop regular.",
	"Into live music.", "Runs before sunrise.", "Amateur photographer.", "Board games night host.", "Sea swimmer."}

// SeedCities returns the centres demo and seed users cluster around.
func SeedCities() []City { return append([]City(nil), cities[:]...) }

// Generator makes deterministic, realistic users: clustered around SeedCities
// (normal-ish spread, a few kilometres to tens of kilometres), a share
// inactive, ages 18..65 skewed young.
type Generator struct {
	rng *rand.Rand
	cum []int
}

// NewGenerator returns a generator; the same seed gives the same users.
func NewGenerator(seed uint64) *Generator {
	g := &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	total := 0
	for _, c := range cities {
		total += c.Weight
		g.cum = append(g.cum, total)
	}
	return g
}

// Rand exposes the generator's deterministic source.
func (g *Generator) Rand() *rand.Rand { return g.rng }

// CityIndex picks a city by weight.
func (g *Generator) CityIndex() int {
	x := g.rng.IntN(g.cum[len(g.cum)-1])
	for i, c := range g.cum {
		if x < c {
			return i
		}
	}
	return len(g.cum) - 1
}

// Near returns a point around a city, spread ~sigmaKm.
func (g *Generator) Near(c City, sigmaKm float64) store.Point {
	dy := g.rng.NormFloat64() * sigmaKm / 111.32
	dx := g.rng.NormFloat64() * sigmaKm / (111.32 * math.Cos(c.Lat*math.Pi/180))
	lat := math.Max(-89.9, math.Min(89.9, c.Lat+dy))
	lng := math.Mod(c.Lng+dx+540, 360) - 180
	return store.Point{Lat: lat, Lng: lng}
}

// User generates the i-th user (i is used for the name suffix only).
func (g *Generator) User(i int) (store.NewUser, int) {
	ci := g.CityIndex()
	c := cities[ci]
	age := 18 + int(math.Abs(g.rng.NormFloat64())*12)
	if age > 65 {
		age = 18 + g.rng.IntN(48)
	}
	gender := store.AllGenders()[g.rng.IntN(20)%3]
	if g.rng.IntN(20) < 9 {
		gender = "woman"
	} else if g.rng.IntN(20) < 18 {
		gender = "man"
	}
	var wants []string
	switch gender {
	case "woman":
		wants = []string{"man"}
	case "man":
		wants = []string{"woman"}
	default:
		wants = []string{"woman", "man", "nonbinary"}
	}
	if g.rng.IntN(10) == 0 {
		wants = []string{"woman", "man", "nonbinary"}
	}
	lo := max(18, age-5-g.rng.IntN(5))
	hi := min(99, age+5+g.rng.IntN(10))
	pt := g.Near(c, 8)
	name := firstNames[g.rng.IntN(len(firstNames))]
	bio := bioBits[g.rng.IntN(len(bioBits))] + " " + bioBits[g.rng.IntN(len(bioBits))] + " Based in " + c.Name + "."
	nPhotos := 1 + g.rng.IntN(4)
	photos := make([]string, nPhotos)
	for k := range photos {
		photos[k] = fmt.Sprintf("https://img.spark.example/u/%d/%d.jpg", i, k)
	}
	return store.NewUser{
		Profile: store.ProfileUpdate{Name: fmt.Sprintf("%s %d", name, i), Age: int16(age), Gender: gender, Bio: bio,
			Photos: photos, Active: g.rng.IntN(100) >= 15},
		Preferences: &store.Preferences{MinAge: int16(lo), MaxAge: int16(hi), MaxDistanceKm: int32(10 + g.rng.IntN(9)*10), Genders: wants},
		Location:    &pt,
	}, ci
}

// SeedDemo creates n demo users in s (ids 1..n on an empty store) and a few
// swipes, matches and messages so every endpoint has something to show. User
// 1 is always active, has a location in Tokyo and at least one match.
func SeedDemo(ctx context.Context, s store.Store, n int, seed uint64) error {
	g := NewGenerator(seed)
	var ids []int64
	for i := 1; i <= n; i++ {
		u, _ := g.User(i)
		if i == 1 {
			c := cities[0]
			pt := store.Point{Lat: c.Lat, Lng: c.Lng}
			u.Location = &pt
			u.Profile.Active = true
			u.Profile.Gender = "man"
			u.Profile.Age = 30
			u.Preferences = &store.Preferences{MinAge: 18, MaxAge: 99, MaxDistanceKm: 50, Genders: []string{"woman", "man", "nonbinary"}}
		}
		id, err := s.CreateUser(ctx, u)
		if err != nil {
			return fmt.Errorf("seed demo user %d: %w", i, err)
		}
		ids = append(ids, id)
	}
	// A few mutual likes with user 1 and some messages.
	for k := 1; k < len(ids) && k <= 3; k++ {
		a, b := ids[0], ids[k]
		if _, err := s.Swipe(ctx, b, a, store.Like); err != nil {
			return fmt.Errorf("seed demo swipe: %w", err)
		}
		res, err := s.Swipe(ctx, a, b, store.Like)
		if err != nil {
			return fmt.Errorf("seed demo swipe: %w", err)
		}
		if res.Match == nil {
			continue
		}
		for j := 0; j < 3; j++ {
			from := a
			if j%2 == 1 {
				from = b
			}
			r := store.SendOne(ctx, s, store.MessageDraft{SenderID: from, ConversationID: res.Match.ConversationID,
				Body: fmt.Sprintf("demo message %d", j), ClientMsgID: fmt.Sprintf("demo-%d-%d", k, j)})
			if r.Err != nil {
				return fmt.Errorf("seed demo message: %w", r.Err)
			}
		}
	}
	// One-sided likes towards user 1 so a swipe back makes a match.
	for k := 4; k < len(ids) && k <= 8; k++ {
		if _, err := s.Swipe(ctx, ids[k], ids[0], store.Like); err != nil {
			return fmt.Errorf("seed demo swipe: %w", err)
		}
	}
	return nil
}
