package geocache

import (
	"testing"
)

func TestDecodedCellsBudget(t *testing.T) {
	s := decodedCells{m: map[string]*decodedCell{}, max: 10_000}
	for i := 0; i < 200; i++ {
		cell := Cell(float64(i%90), float64(i), 5)
		s.put(cell, &decodedCell{size: 700})
		if _, bytes := s.len(); bytes > s.max {
			t.Fatalf("after %d puts %d bytes held, budget %d", i+1, bytes, s.max)
		}
	}
	// Replacing cells over and over keeps the count of bytes exact.
	for i := 0; i < 5000; i++ {
		cell := Cell(float64(i%7), float64(i%5), 5)
		s.put(cell, &decodedCell{size: int64(300 + i%400)})
		var sum int64
		s.mu.RLock()
		for _, d := range s.m {
			sum += d.size
		}
		s.mu.RUnlock()
		if _, bytes := s.len(); bytes != sum || bytes > s.max {
			t.Fatalf("after replacing: %d bytes counted, %d held, budget %d", bytes, sum, s.max)
		}
	}
	n, _ := s.len()
	if n == 0 || n > 10_000/300 {
		t.Fatalf("%d cells held in a 10,000-byte budget of cells of 300 bytes or more", n)
	}
	s.put("big", &decodedCell{size: s.max/4 + 1})
	if s.get("big") != nil {
		t.Error("a cell over a quarter of the budget was kept")
	}
	off := decodedCells{m: map[string]*decodedCell{}}
	off.put("x", &decodedCell{size: 1})
	if off.get("x") != nil {
		t.Error("disabled (zero budget) store kept a cell")
	}
}
