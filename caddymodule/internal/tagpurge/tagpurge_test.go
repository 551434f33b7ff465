package tagpurge

import "testing"

func TestCheckTags(t *testing.T) {
	if err := CheckTags([]string{"conversation:3", "conversations:1"}); err != nil {
		t.Fatalf("good tags refused: %v", err)
	}
	if err := CheckTags(nil); err != nil {
		t.Fatalf("no tags refused: %v", err)
	}
	for _, bad := range []string{"", "a b", "a,b", "a\x00"} {
		if err := CheckTags([]string{"ok", bad}); err == nil {
			t.Fatalf("tag %q accepted", bad)
		}
	}
}
