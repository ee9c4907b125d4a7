package segments_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/segd/segd/segments"
)

// The example rule of the design: returning customers in London who visited the pricing page.
const designRule = "count(web:visit in 90d) >= 2 and web:geo=london and web:page=/pricing in 30d"

func trait(name string, col int) segments.Expr {
	return &segments.TraitExpr{Name: name, Col: col}
}

func window(name string, days, col int) segments.Expr {
	return &segments.WindowExpr{Name: name, Days: days, Col: col}
}

func count(name string, days, least, col int) segments.Expr {
	return &segments.CountExpr{Name: name, Days: days, Min: least, Col: col}
}

func segment(id string, col int) segments.Expr {
	return &segments.SegmentExpr{ID: id, Col: col}
}

func and(l, r segments.Expr) segments.Expr { return &segments.AndExpr{L: l, R: r} }

func or(l, r segments.Expr) segments.Expr { return &segments.OrExpr{L: l, R: r} }

func not(x segments.Expr, col int) segments.Expr { return &segments.NotExpr{X: x, Col: col} }

// shape prints e fully parenthesised in prefix form, without columns, so that two trees
// compare equal when they mean the same rule wherever their nodes sit in the source.
func shape(e segments.Expr) string { return render(e, false) }

// located prints e like shape, with the column of every node that records one after an '@'.
func located(e segments.Expr) string { return render(e, true) }

func render(e segments.Expr, cols bool) string {
	at := func(col int) string {
		if !cols {
			return ""
		}
		return fmt.Sprintf("@%d", col)
	}
	switch e := e.(type) {
	case *segments.TraitExpr:
		return e.Name + at(e.Col)
	case *segments.WindowExpr:
		return fmt.Sprintf("(in%s %s %dd)", at(e.Col), e.Name, e.Days)
	case *segments.CountExpr:
		return fmt.Sprintf("(count%s %s %dd %d)", at(e.Col), e.Name, e.Days, e.Min)
	case *segments.SegmentExpr:
		return "segment:" + e.ID + at(e.Col)
	case *segments.AndExpr:
		return "(and " + render(e.L, cols) + " " + render(e.R, cols) + ")"
	case *segments.OrExpr:
		return "(or " + render(e.L, cols) + " " + render(e.R, cols) + ")"
	case *segments.NotExpr:
		return "(not" + at(e.Col) + " " + render(e.X, cols) + ")"
	}
	return fmt.Sprintf("unknown %T", e)
}

func TestParseRule(t *testing.T) {
	source64 := strings.Repeat("s", 64)
	tests := []struct {
		name string
		src  string
		want segments.Expr
	}{
		{"trait", "crm:gold", trait("crm:gold", 1)},
		{"trait with value", "web:geo=london", trait("web:geo=london", 1)},
		{"trait with path", "web:page=/pricing", trait("web:page=/pricing", 1)},
		{"every key byte", "x:Az09_-./=+@%~:!", trait("x:Az09_-./=+@%~:!", 1)},
		{"source of 64 bytes", source64 + ":k", trait(source64+":k", 1)},
		{"source with _ and -", "a_b-c:k", trait("a_b-c:k", 1)},
		{"keyword as source", "and:x or in:y", or(trait("and:x", 1), trait("in:y", 10))},
		{"surrounding space", " \t crm:gold\n", trait("crm:gold", 4)},
		{"window", "web:page=/pricing in 30d", window("web:page=/pricing", 30, 1)},
		{"window of 1 day", "web:visit in 1d", window("web:visit", 1, 1)},
		{"window of 3650 days", "web:visit in 3650d", window("web:visit", 3650, 1)},
		{"window in capitals", "web:visit IN 7D", window("web:visit", 7, 1)},
		{"window with leading zeros", "web:visit in 007d", window("web:visit", 7, 1)},
		{"count", "count(web:visit in 90d) >= 2", count("web:visit", 90, 2, 1)},
		{"count greater than", "count(web:visit in 90d) > 2", count("web:visit", 90, 3, 1)},
		{"count greater than 0", "count(web:visit in 9d) > 0", count("web:visit", 9, 1, 1)},
		{"count of every day", "count(web:visit in 9d) >= 9", count("web:visit", 9, 9, 1)},
		{"count without spaces", "count(web:visit in 90d)>=2", count("web:visit", 90, 2, 1)},
		{
			"count in capitals", "COUNT( web:visit In 90D ) >= 90",
			count("web:visit", 90, 90, 1),
		},
		{"segment", "segment:loyal", segment("loyal", 1)},
		{"segment of 64 bytes", "segment:" + source64, segment(source64, 1)},
		{"not", "not crm:gold", not(trait("crm:gold", 5), 1)},
		{"not in capitals", "NOT crm:gold", not(trait("crm:gold", 5), 1)},
		{"not not", "not not crm:gold", not(not(trait("crm:gold", 9), 5), 1)},
		{"not before parenthesis", "not(crm:gold)", not(trait("crm:gold", 5), 1)},
		{"and", "crm:gold and web:x", and(trait("crm:gold", 1), trait("web:x", 14))},
		{"or", "crm:gold OR web:x", or(trait("crm:gold", 1), trait("web:x", 13))},
		{"parentheses", "((crm:gold))", trait("crm:gold", 3)},
		{
			"parentheses without spaces", "(crm:gold)and(web:x)",
			and(trait("crm:gold", 2), trait("web:x", 15)),
		},
		{
			"segments", "segment:a and not segment:b",
			and(segment("a", 1), not(segment("b", 19), 15)),
		},
		{
			"design example", designRule,
			and(
				and(count("web:visit", 90, 2, 1), trait("web:geo=london", 34)),
				window("web:page=/pricing", 30, 53),
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := segments.ParseRule(tt.src)
			if err != nil {
				t.Fatalf("ParseRule(%q): %v", tt.src, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseRule(%q)\n got %s\nwant %s", tt.src, located(got), located(tt.want))
			}
		})
	}
}

func TestParseRulePrecedence(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"and binds tighter than or", "a:a or b:b and c:c", "(or a:a (and b:b c:c))"},
		{"and before or", "a:a and b:b or c:c", "(or (and a:a b:b) c:c)"},
		{"not binds tighter than and", "not a:a and b:b", "(and (not a:a) b:b)"},
		{"not binds tighter than or", "not a:a or b:b", "(or (not a:a) b:b)"},
		{"or is left-associative", "a:a or b:b or c:c", "(or (or a:a b:b) c:c)"},
		{"and is left-associative", "a:a and b:b and c:c", "(and (and a:a b:b) c:c)"},
		{"parentheses group or", "a:a and (b:b or c:c)", "(and a:a (or b:b c:c))"},
		{"parentheses group left", "(a:a or b:b) and c:c", "(and (or a:a b:b) c:c)"},
		{"parentheses group right", "a:a or (b:b or c:c)", "(or a:a (or b:b c:c))"},
		{"not of a group", "not (a:a and b:b)", "(not (and a:a b:b))"},
		{"all three", "a:a or not b:b and c:c", "(or a:a (and (not b:b) c:c))"},
		{"window binds to its trait", "a:a in 3d and b:b", "(and (in a:a 3d) b:b)"},
		{"not of a window", "not a:a in 3d", "(not (in a:a 3d))"},
		{"not of a count", "not count(a:a in 3d) > 1", "(not (count a:a 3d 2))"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := segments.ParseRule(tt.src)
			if err != nil {
				t.Fatalf("ParseRule(%q): %v", tt.src, err)
			}
			if s := shape(got); s != tt.want {
				t.Errorf("ParseRule(%q) = %s, want %s", tt.src, s, tt.want)
			}
		})
	}
}

func TestRuleString(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"trait", "crm:gold", "crm:gold"},
		{"space trimmed", " \tcrm:gold \n", "crm:gold"},
		{"window", "web:x IN 007D", "web:x in 7d"},
		{"count", "count( web:visit in 90d )>=2", "count(web:visit in 90d) >= 2"},
		{"count greater than", "count(web:visit in 9d)>1", "count(web:visit in 9d) >= 2"},
		{"segment", "segment:x AND not(segment:y)", "segment:x and not segment:y"},
		{"redundant parentheses", "((a:a))", "a:a"},
		{"not not", "NOT Not a:a", "not not a:a"},
		{"not of a group", "not (a:a or b:b)", "not (a:a or b:b)"},
		{"and inside or", "a:a or b:b and c:c", "a:a or (b:b and c:c)"},
		{"and before or", "a:a and b:b or c:c", "(a:a and b:b) or c:c"},
		{"or inside and", "(a:a or b:b) and c:c", "(a:a or b:b) and c:c"},
		{"left chain", "a:a and b:b and c:c", "a:a and b:b and c:c"},
		{"right and", "a:a and (b:b and c:c)", "a:a and (b:b and c:c)"},
		{"right or", "a:a or (b:b or c:c)", "a:a or (b:b or c:c)"},
		{
			"brief example", "(a:b and not c:d) or count(web:visit in 90d) >= 2",
			"(a:b and not c:d) or count(web:visit in 90d) >= 2",
		},
		{"design example", designRule, designRule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := segments.ParseRule(tt.src)
			if err != nil {
				t.Fatalf("ParseRule(%q): %v", tt.src, err)
			}
			if got := e.String(); got != tt.want {
				t.Fatalf("ParseRule(%q).String() = %q, want %q", tt.src, got, tt.want)
			}

			again, err := segments.ParseRule(tt.want)
			if err != nil {
				t.Fatalf("ParseRule(%q) of the canonical text: %v", tt.want, err)
			}
			if shape(again) != shape(e) || again.String() != tt.want {
				t.Errorf("round trip changed the rule: %s, then %s", shape(e), shape(again))
			}
		})
	}
}

func TestExprPos(t *testing.T) {
	tests := []struct {
		src  string
		want int
	}{
		{"  crm:gold", 3},
		{"(crm:gold or web:x) and web:y", 2},
		{"web:y or web:x", 1},
		{" not web:x", 2},
		{"  count(web:x in 3d) >= 1", 3},
		{"\tsegment:x", 2},
		{" web:x in 3d", 2},
	}
	for _, tt := range tests {
		e, err := segments.ParseRule(tt.src)
		if err != nil {
			t.Fatalf("ParseRule(%q): %v", tt.src, err)
		}
		if got := e.Pos(); got != tt.want {
			t.Errorf("ParseRule(%q).Pos() = %d, want %d", tt.src, got, tt.want)
		}
	}
}

func TestParseRuleErrors(t *testing.T) {
	const useID = "use 1 to 64 of a-z, 0-9, _ and -"
	long := strings.Repeat("s", 65)
	tests := []struct {
		name string
		src  string
		col  int
		msg  string
	}{
		{"empty", "", 1, "rule is empty"},
		{"only space", "   ", 4, "rule is empty"},
		{"bare word", "foo", 1, `unknown word "foo": expected a trait like source:key`},
		{"bare word after and", "crm:gold and foo", 14,
			`unknown word "foo": expected a trait like source:key`},
		{"number as atom", "crm:gold or 30d", 13,
			`unknown word "30d": expected a trait like source:key`},
		{"end after and", "crm:gold and", 13,
			"unexpected end of rule: expected a trait like source:key"},
		{"end after not", "crm:gold and not", 17,
			"unexpected end of rule: expected a trait like source:key"},
		{"leading and", "and crm:gold", 1, "expected a trait like source:key, found 'and'"},
		{"double or", "crm:gold or OR web:x", 13, "expected a trait like source:key, found 'or'"},
		{"empty group", "()", 2, "expected a trait like source:key, found ')'"},
		{"capital source", "Crm:gold", 1, `invalid trait source "Crm": ` + useID},
		{"empty source", ":gold", 1, `invalid trait source "": ` + useID},
		{"long source", long + ":k", 1, `invalid trait source "` + long + `": ` + useID},
		{"bang in source", "!crm:gold", 1, `invalid trait source "!crm": ` + useID},
		{"empty key", "crm: and web:x", 1, `missing key after "crm:", as in crm:key`},
		{"capital segment", "segment:Loyal", 1, `invalid segment ID "Loyal": ` + useID},
		{"empty segment", "segment:", 1, `invalid segment ID "": ` + useID},
		{"long segment", "segment:" + long, 1, `invalid segment ID "` + long + `": ` + useID},
		{"segment with window", "segment:loyal in 30d", 15,
			"a segment reference cannot have a window"},
		{"hours", "web:visit in 30h", 14,
			`unknown window unit "h": only d (days) is supported`},
		{"days spelt out", "web:visit in 30days", 14,
			`unknown window unit "days": only d (days) is supported`},
		{"no unit", "web:visit in 30", 14, "window 30 needs a unit: write 30d"},
		{"unit apart", "web:visit in 30 d", 14, "window 30 needs a unit: write 30d"},
		{"zero days", "web:visit in 0d", 14, "window must be at least 1 day"},
		{"too many days", "web:visit in 3651d", 14, "window must be at most 3650 days"},
		{"huge days", "web:visit in 99999999999999999999999d", 14,
			"window must be at most 3650 days"},
		{"end after in", "web:visit in", 13, "unexpected end of rule: expected days like 30d"},
		{"word after in", "web:visit in days", 14, `expected days like 30d, found "days"`},
		{"negative days", "web:visit in -5d", 14, `expected days like 30d, found "-5d"`},
		{"unclosed", "(crm:gold", 10, "expected ')' to close '(' at column 1"},
		{"unclosed inner", "(a:a and (b:b or c:c)", 22, "expected ')' to close '(' at column 1"},
		{"missing operator in group", "(crm:gold web:x)", 11,
			`expected 'and', 'or' or ')', found "web:x"`},
		{"stray close", "crm:gold)", 9, "unexpected ')' without a matching '('"},
		{"stray close after window", "crm:gold in 3d)", 15,
			"unexpected ')' without a matching '('"},
		{"missing operator", "crm:gold web:x", 10,
			`expected 'and', 'or' or end of rule, found "web:x"`},
		{"trailing not", "crm:gold not web:x", 10,
			"expected 'and', 'or' or end of rule, found 'not'"},
		{"window of a group", "(crm:gold) in 30d", 12,
			"a window like 'in 30d' can only follow a single trait"},
		{"window in group", "(web:x in 3d in 4d)", 14,
			"a window like 'in 30d' can only follow a single trait"},
		{"second window", "web:x in 3d in 4d", 13,
			"a window like 'in 30d' can only follow a single trait"},
		{"window of a count", "count(web:x in 30d) >= 2 in 5d", 26,
			"a window like 'in 30d' can only follow a single trait"},
		{"bare count", "count", 6, "unexpected end of rule: expected '(' after count"},
		{"count without parenthesis", "count web:visit", 7,
			`expected '(' after count, found "web:visit"`},
		{"count without window", "count(web:visit) >= 2", 16,
			"expected a window like 'in 30d' inside count(...), found ')'"},
		{"count of a segment", "count(segment:x in 3d) >= 1", 7,
			"count needs a trait, not a segment reference"},
		{"count of a word", "count(foo in 3d) >= 1", 7,
			`unknown word "foo": expected a trait like source:key`},
		{"count of bad trait", "count(Web:x in 3d) >= 1", 7, `invalid trait source "Web": ` + useID},
		{"count of nothing", "count()", 7, "expected a trait like source:key, found ')'"},
		{"count with zero days", "count(web:visit in 0d) >= 1", 20,
			"window must be at least 1 day"},
		{"count unclosed", "count(web:visit in 30d", 23,
			"unexpected end of rule: expected ')' to close count(...)"},
		{"count without comparison", "count(web:visit in 30d)", 24,
			"unexpected end of rule: expected '>=' or '>' after count(...)"},
		{"count with equals", "count(web:visit in 30d) = 2", 25,
			`expected '>=' or '>' after count(...), found "="`},
		{"count with less than", "count(web:visit in 30d) < 2", 25,
			"unexpected character '<'"},
		{"count without number", "count(web:visit in 30d) >=", 27,
			"unexpected end of rule: expected a whole number after '>='"},
		{"count with word", "count(web:visit in 30d) >= x", 28,
			`expected a whole number after '>=', found "x"`},
		{"count with days", "count(web:visit in 30d) >= 2d", 28,
			`expected a whole number after '>=', found "2d"`},
		{"count of zero", "count(web:visit in 30d) >= 0", 28, "count must be at least 1"},
		{"count above window", "count(web:visit in 30d) >= 31", 28,
			"count >= 31 can never hold within 30 days"},
		{"count greater than window", "count(web:visit in 30d) > 30", 27,
			"count > 30 can never hold within 30 days"},
		{"huge count", "count(web:visit in 30d) > 99999999999999999999", 27,
			"count > 99999999999999999999 can never hold within 30 days"},
		{"less than", "crm:gold < 3", 10, "unexpected character '<'"},
		{"quote", `web:geo="london"`, 9, `unexpected character '"'`},
		{"comma", "crm:gold, web:x", 9, "unexpected character ','"},
		{"accent", "crm:gé", 6, "unexpected character 'é'"},
		{"bad byte", "crm:gold\xff", 9, "unexpected byte 0xff"},
		{"accent before atom", "crm:gold and é:x", 14, "unexpected character 'é'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRuleError(t, tt.src, tt.col, tt.msg)
		})
	}
}

// checkRuleError asserts that ParseRule rejects src with a *RuleError at col saying msg.
func checkRuleError(t *testing.T, src string, col int, msg string) {
	t.Helper()
	e, err := segments.ParseRule(src)
	if err == nil {
		t.Fatalf("ParseRule(%.40q) = %s, want an error", src, e)
	}
	var re *segments.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("ParseRule(%.40q) error %T %v, want *segments.RuleError", src, err, err)
	}
	if re.Col != col || re.Msg != msg {
		t.Errorf("ParseRule(%.40q) error\n got column %d: %s\nwant column %d: %s",
			src, re.Col, re.Msg, col, msg)
	}
}

func TestParseRuleLimits(t *testing.T) {
	nested := func(n int) string {
		return strings.Repeat("(", n) + "a:b" + strings.Repeat(")", n)
	}
	ors := func(n int) string { return strings.Repeat("a:b or ", n-1) + "a:b" }
	tests := []struct {
		name string
		src  string
		col  int // 0 when the rule is accepted
		msg  string
	}{
		{"4096 bytes", "a:" + strings.Repeat("x", 4094), 0, ""},
		{"4097 bytes", "a:" + strings.Repeat("x", 4095), 4097, "rule is longer than 4096 bytes"},
		{"64 parentheses", nested(64), 0, ""},
		{"65 parentheses", nested(65), 65, "rule nests deeper than 64 levels"},
		{"deep parentheses", strings.Repeat("(", 4096), 65, "rule nests deeper than 64 levels"},
		{"64 nots", strings.Repeat("not ", 64) + "a:b", 0, ""},
		{"65 nots", strings.Repeat("not ", 65) + "a:b", 257, "rule nests deeper than 64 levels"},
		{"nots in parentheses", strings.Repeat("(not ", 33) + "a:b", 161,
			"rule nests deeper than 64 levels"},
		{"256 atoms", ors(256), 0, ""},
		{"257 atoms", ors(257), 1793, "rule has more than 256 atoms"},
		{"257th atom a count", ors(256) + " or count(a:b in 9d) >= 1", 1793,
			"rule has more than 256 atoms"},
		{"257th atom a segment", ors(256) + " and segment:x", 1794,
			"rule has more than 256 atoms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.col != 0 {
				checkRuleError(t, tt.src, tt.col, tt.msg)
				return
			}
			if _, err := segments.ParseRule(tt.src); err != nil {
				t.Fatalf("ParseRule of %d bytes: %v", len(tt.src), err)
			}
		})
	}
}

func TestRuleErrorError(t *testing.T) {
	err := &segments.RuleError{Col: 12, Msg: "expected ')'"}
	if got, want := err.Error(), "column 12: expected ')'"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestValidTraitName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"crm:gold", true},
		{"web:geo=london", true},
		{"web:page=/pricing", true},
		{"web:a:b", true},
		{"x:Az09_-./=+@%~:!", true},
		{strings.Repeat("s", 64) + ":k", true},
		{"and:or", true},
		{"", false},
		{"crm", false},
		{"crm:", false},
		{":gold", false},
		{"Crm:gold", false},
		{"cr m:gold", false},
		{strings.Repeat("s", 65) + ":k", false},
		{"segment:loyal", false},
		{"crm:go ld", false},
		{"crm:gold,silver", false},
		{"crm:(gold)", false},
		{`crm:"gold"`, false},
		{"crm:<gold>", false},
		{"crm:gé", false},
		{"crm:gold\x00", false},
		{"crm:gold\n", false},
	}
	for _, tt := range tests {
		if got := segments.ValidTraitName(tt.name); got != tt.want {
			t.Errorf("ValidTraitName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"loyal", true},
		{"a", true},
		{"gold_2024-q1", true},
		{strings.Repeat("s", 64), true},
		{"", false},
		{strings.Repeat("s", 65), false},
		{"Loyal", false},
		{"a.b", false},
		{"a:b", false},
		{"a b", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := segments.ValidID(tt.id); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func ExampleParseRule() {
	rule, err := segments.ParseRule(
		"COUNT(web:visit in 90d) > 1 AND web:geo=london and (web:page=/pricing in 30d)")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rule)

	_, err = segments.ParseRule("crm:gold and (web:geo=london or web:geo=paris")
	fmt.Println(err)

	_, err = segments.ParseRule("web:page=/pricing in 30h")
	fmt.Println(err)
	// Output:
	// count(web:visit in 90d) >= 2 and web:geo=london and web:page=/pricing in 30d
	// column 46: expected ')' to close '(' at column 14
	// column 22: unknown window unit "h": only d (days) is supported
}
