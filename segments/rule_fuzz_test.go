package segments_test

import (
	"errors"
	"testing"

	"github.com/segd/segd/segments"
)

func FuzzParseRule(f *testing.F) {
	seeds := []string{
		designRule,
		"(a:b and not c:d) or count(web:visit in 90d) >= 2",
		"segment:loyal and not (crm:gold or web:page=/pricing in 7D)",
		"NOT not(x:Az09_-./=+@%~:!)OR count( a:b IN 1d )>0",
		"count(web:visit in 30d) >= 31",
		"(crm:gold web:x",
		"crm:gold, web:x < 3 \xff é",
		"((((((((((((((((((((((((((((((((((a:b))))))))))))))))))))))))))))))))))",
	}
	for _, s := range seeds {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, src string) {
		e, err := segments.ParseRule(src)
		if err != nil {
			checkFuzzError(t, src, err)
			return
		}
		checkNames(t, e)

		// The canonical text may be longer than the source ('>' becomes '>=', spaces are
		// added), so past the length limit there is nothing to parse back.
		canon := e.String()
		if len(canon) > 4096 {
			return
		}
		again, err := segments.ParseRule(canon)
		if err != nil {
			t.Fatalf("ParseRule(%q) = %q, which does not parse: %v", src, canon, err)
		}
		if got := again.String(); got != canon || shape(again) != shape(e) {
			t.Fatalf("round trip of %q: %q (%s), then %q (%s)",
				src, canon, shape(e), got, shape(again))
		}
	})
}

// checkFuzzError asserts that err is a *RuleError pointing into src or just past its end.
func checkFuzzError(t *testing.T, src string, err error) {
	t.Helper()
	var re *segments.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("ParseRule(%q) error %T %v, want *segments.RuleError", src, err, err)
	}
	if re.Col < 1 || re.Col > len(src)+1 || re.Msg == "" {
		t.Fatalf("ParseRule(%q) error %q has a column outside the rule", src, err)
	}
}

// checkNames asserts that every name in an accepted rule passes ValidTraitName or ValidID,
// so that rules and imports agree on what a trait is.
func checkNames(t *testing.T, e segments.Expr) {
	t.Helper()
	name := ""
	switch e := e.(type) {
	case *segments.TraitExpr:
		name = e.Name
	case *segments.WindowExpr:
		name = e.Name
	case *segments.CountExpr:
		name = e.Name
	case *segments.SegmentExpr:
		if !segments.ValidID(e.ID) {
			t.Fatalf("accepted segment ID %q", e.ID)
		}
		return
	case *segments.AndExpr:
		checkNames(t, e.L)
		checkNames(t, e.R)
		return
	case *segments.OrExpr:
		checkNames(t, e.L)
		checkNames(t, e.R)
		return
	case *segments.NotExpr:
		checkNames(t, e.X)
		return
	}
	if !segments.ValidTraitName(name) {
		t.Fatalf("accepted trait name %q", name)
	}
}
