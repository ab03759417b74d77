package human

import "testing"

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		n    int
		noun string
		want string
	}{
		{0, "request", "0 requests"},
		{1, "request", "1 request"},
		{2, "request", "2 requests"},
		{1, "registry", "1 registry"},
		{18, "registry", "18 registries"},
		{1, "referrer tag", "1 referrer tag"},
		{0, "referrer tag", "0 referrer tags"},
		{3, "match", "3 matches"},
		{1, "subject", "1 subject"},
		{2, "image", "2 images"},
	} {
		if got := Count(tc.n, tc.noun); got != tc.want {
			t.Errorf("Count(%d, %q) = %q, want %q", tc.n, tc.noun, got, tc.want)
		}
	}
	if got := Count64(1, "byte"); got != "1 byte" {
		t.Errorf("Count64(1) = %q", got)
	}
	if got := Count64(1<<40, "byte"); got != "1099511627776 bytes" {
		t.Errorf("Count64(big) = %q", got)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1023: "1023B", 1024: "1.0K", 17510: "17.1K", 3 << 20: "3.0M", 5 << 30: "5.0G"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestMillis(t *testing.T) {
	for ms, want := range map[int64]string{0: "0ms", 850: "850ms", 4100: "4.1s", 125_000: "2m5s"} {
		if got := Millis(ms); got != want {
			t.Errorf("Millis(%d) = %q, want %q", ms, got, want)
		}
	}
}
