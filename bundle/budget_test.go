package bundle_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"slices"
	"testing"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/craft"
)

// TestBombBudgetComesFromPresentMembers: the decompression budget is the
// listed size of the members that are there. A listing of an absent file,
// however large (8 GiB, or 2^63-1, which overflowed the budget to "no
// bound" before), does not let 8 GiB of zeros through: reading stops
// within tens of MiB. A listed layer of zeros that is there is whole.
func TestBombBudgetComesFromPresentMembers(t *testing.T) {
	t.Parallel()
	for _, listed := range []int64{8 << 30, 1<<63 - 1} {
		c := craft.Case{Write: func(w io.Writer) error {
			b := craft.Valid()
			b.Listed = map[string]craft.Listed{"absent.bin": {Size: listed, Sum: craft.Sum(nil)}}
			s := craft.NewStream(w)
			if err := s.File("manifest.yaml", b.ManifestYAML()); err != nil {
				return err
			}
			for _, m := range b.Members {
				if err := s.File(m.Name, m.Data); err != nil {
					return err
				}
			}
			if err := s.FileFrom("zeros.bin", 8<<30, zeroReader{}); err != nil {
				return err
			}
			return s.Close()
		}}
		rep, err := validateStream(c)
		if err != nil || rep.Complete || !slices.Contains(problemCodes(rep), finding.DecompressionBomb) {
			t.Fatalf("listing of %d absent bytes: err %v, codes %v", listed, err, problemCodes(rep))
		}
		if rep.BytesChecked > 64<<20 {
			t.Fatalf("listing of %d absent bytes: %d bytes of zeros were inflated and hashed", listed, rep.BytesChecked)
		}
	}
	// 48 MiB of zeros, listed and present, past the 16 MiB of slack: whole.
	zeros := make([]byte, 48<<20)
	b := craft.Valid()
	b.Members = append(b.Members, craft.Member{Name: "blobs/sha256/" + craft.Sum(zeros), Data: zeros})
	rep, err := validate(t, b.Tgz())
	if err != nil || !rep.OK {
		t.Fatalf("a listed layer of zeros: %v %s", err, dump(rep))
	}
}

func zerosSum(n int64) string {
	h := sha256.New()
	if _, err := io.CopyN(h, zeroReader{}, n); err != nil {
		panic(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestExpansionRatioStaysOn: whatever manifest.yaml lists, more than the
// floor inflated at more than the ratio is a bomb (here a 16 MiB floor, so
// that the test inflates 64 MiB rather than the default's 256).
func TestExpansionRatioStaysOn(t *testing.T) {
	t.Parallel()
	c := craft.Case{Write: func(w io.Writer) error {
		b := craft.Valid()
		// The listing claims a 1 GiB member of zeros, present and right.
		b.Listed = map[string]craft.Listed{"zeros.bin": {Size: 64 << 20, Sum: zerosSum(64 << 20)}}
		s := craft.NewStream(w)
		if err := s.File("manifest.yaml", b.ManifestYAML()); err != nil {
			return err
		}
		for _, m := range b.Members {
			if err := s.File(m.Name, m.Data); err != nil {
				return err
			}
		}
		if err := s.FileFrom("zeros.bin", 64<<20, zeroReader{}); err != nil {
			return err
		}
		return s.Close()
	}}
	rep, _ := validateStream(c, bundle.WithExpansionLimit(bundle.DefaultExpansionRatio, 16<<20))
	if !slices.Contains(problemCodes(rep), finding.DecompressionBomb) || rep.BytesChecked > 20<<20 {
		t.Fatalf("64 MiB of listed zeros at 1000:1: codes %v, %d bytes hashed", problemCodes(rep), rep.BytesChecked)
	}
	rep, err := validateStream(c, bundle.WithExpansionLimit(0, 0))
	if err != nil || slices.Contains(problemCodes(rep), finding.DecompressionBomb) {
		t.Fatalf("with the ratio check off the listing bounds the stream: %v %v", err, problemCodes(rep))
	}
}
