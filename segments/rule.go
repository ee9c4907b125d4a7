package segments

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of the rule language. Exceeding any of them is a *RuleError.
const (
	maxRuleBytes  = 4096 // length of the rule source
	maxRuleDepth  = 64   // open parentheses plus pending 'not's at any point
	maxRuleAtoms  = 256  // traits, windows, counts and segment references
	maxWindowDays = 3650 // longest window: about ten years
	maxIDLen      = 64   // longest source or segment ID
)

// idAdvice ends the error for a malformed source or segment ID.
const idAdvice = "use 1 to 64 of a-z, 0-9, _ and -"

// Expr is a node of a parsed rule. ParseRule builds trees of *TraitExpr, *WindowExpr,
// *CountExpr, *SegmentExpr, *AndExpr, *OrExpr and *NotExpr. A tree is never modified after
// ParseRule returns it, so it is safe to share between goroutines that only read it.
type Expr interface {
	// Pos returns the 1-based byte column where the node starts in the rule source.
	Pos() int
	// String returns the canonical text of the node, which ParseRule parses back to an
	// equal tree.
	String() string
}

// TraitExpr holds when the profile has the trait Name now.
type TraitExpr struct {
	Name string // full trait name, such as "web:geo=london"
	Col  int
}

// WindowExpr holds when the profile had the trait Name at least once in the last Days days.
type WindowExpr struct {
	Name string
	Days int // 1 to 3650
	Col  int
}

// CountExpr holds when the profile had the trait Name on at least Min distinct days of the
// last Days days. A rule written with '> K' is stored as Min = K+1.
type CountExpr struct {
	Name      string
	Days, Min int // 1 <= Min <= Days <= 3650
	Col       int // column of the word count
}

// SegmentExpr holds when the profile is in the segment ID.
type SegmentExpr struct {
	ID  string
	Col int
}

// AndExpr holds when both L and R hold.
type AndExpr struct{ L, R Expr }

// OrExpr holds when L or R holds.
type OrExpr struct{ L, R Expr }

// NotExpr holds when X does not.
type NotExpr struct {
	X   Expr
	Col int // column of the word not
}

// Pos implements Expr.
func (e *TraitExpr) Pos() int { return e.Col }

// Pos implements Expr.
func (e *WindowExpr) Pos() int { return e.Col }

// Pos implements Expr.
func (e *CountExpr) Pos() int { return e.Col }

// Pos implements Expr.
func (e *SegmentExpr) Pos() int { return e.Col }

// Pos implements Expr; it is the position of the left operand.
func (e *AndExpr) Pos() int { return e.L.Pos() }

// Pos implements Expr; it is the position of the left operand.
func (e *OrExpr) Pos() int { return e.L.Pos() }

// Pos implements Expr.
func (e *NotExpr) Pos() int { return e.Col }

// String implements Expr.
func (e *TraitExpr) String() string { return string(appendExpr(nil, e)) }

// String implements Expr.
func (e *WindowExpr) String() string { return string(appendExpr(nil, e)) }

// String implements Expr.
func (e *CountExpr) String() string { return string(appendExpr(nil, e)) }

// String implements Expr.
func (e *SegmentExpr) String() string { return string(appendExpr(nil, e)) }

// String implements Expr.
func (e *AndExpr) String() string { return string(appendExpr(nil, e)) }

// String implements Expr.
func (e *OrExpr) String() string { return string(appendExpr(nil, e)) }

// String implements Expr.
func (e *NotExpr) String() string { return string(appendExpr(nil, e)) }

// appendExpr appends the canonical text of e to b. Operators are left-associative, so a right
// operand that is itself an 'and' or 'or' is parenthesised. An 'and' inside an 'or' is
// parenthesised too, though precedence does not need it, so that no reader has to recall it.
func appendExpr(b []byte, e Expr) []byte {
	switch e := e.(type) {
	case nil:
		return append(b, "<nil>"...)
	case *TraitExpr:
		return append(b, e.Name...)
	case *WindowExpr:
		return appendWindow(append(b, e.Name...), e.Days)
	case *CountExpr:
		b = appendWindow(append(append(b, "count("...), e.Name...), e.Days)
		return strconv.AppendInt(append(b, ") >= "...), int64(e.Min), 10)
	case *SegmentExpr:
		return append(append(b, "segment:"...), e.ID...)
	case *AndExpr:
		b = append(appendOperand(b, e.L, isOr(e.L)), " and "...)
		return appendOperand(b, e.R, isBinary(e.R))
	case *OrExpr:
		b = append(appendOperand(b, e.L, isAnd(e.L)), " or "...)
		return appendOperand(b, e.R, isBinary(e.R))
	case *NotExpr:
		return appendOperand(append(b, "not "...), e.X, isBinary(e.X))
	}
	return append(b, e.String()...)
}

func appendOperand(b []byte, e Expr, paren bool) []byte {
	if !paren {
		return appendExpr(b, e)
	}
	return append(appendExpr(append(b, '('), e), ')')
}

func isAnd(e Expr) bool {
	_, ok := e.(*AndExpr)
	return ok
}

func isOr(e Expr) bool {
	_, ok := e.(*OrExpr)
	return ok
}

func isBinary(e Expr) bool { return isAnd(e) || isOr(e) }

func appendWindow(b []byte, days int) []byte {
	return append(strconv.AppendInt(append(b, " in "...), int64(days), 10), 'd')
}

// RuleError is a syntax error in a rule.
type RuleError struct {
	Col int    // 1-based byte column of the offending token
	Msg string // lowercase, without the column
}

// Error returns the message prefixed with the column, such as "column 12: expected ')'".
func (e *RuleError) Error() string {
	return "column " + strconv.Itoa(e.Col) + ": " + e.Msg
}

// ValidID reports whether s has the shape of a source or segment ID: 1 to 64 bytes of
// a-z, 0-9, '_' and '-'.
func ValidID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIDByte(s[i]) {
			return false
		}
	}
	return true
}

// ValidTraitName reports whether s is a trait name a rule can refer to: a source ID, a colon
// and a non-empty key of ASCII letters, digits and any of _ - . / = + @ % ~ : !, as in
// "web:page=/pricing". The source "segment" is reserved for segment references, so
// "segment:x" is not a trait name. The key has no length limit of its own.
func ValidTraitName(s string) bool {
	source, key, ok := strings.Cut(s, ":")
	if !ok || source == "segment" || !ValidID(source) || key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		if !isWordByte(key[i]) {
			return false
		}
	}
	return true
}

func isIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// isWordByte reports whether c may appear in a word: a trait, a keyword or a number.
func isWordByte(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	return c != 0 && strings.IndexByte("_-./=+@%~:!", c) >= 0
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// ParseRule parses a rule such as
//
//	count(web:visit in 90d) >= 2 and web:geo=london and web:page=/pricing in 30d
//
// The keywords and, or, not, count and in are case-insensitive; trait and segment names are
// not. 'not' binds tighter than 'and', which binds tighter than 'or'; both are
// left-associative. The window unit d may be written D, and '> K' is read as '>= K+1'. A rule
// is at most 4096 bytes with at most 256 atoms, and parentheses and 'not' nest at most 64
// deep. Every error is a *RuleError.
func ParseRule(src string) (Expr, error) {
	if len(src) > maxRuleBytes {
		msg := fmt.Sprintf("rule is longer than %d bytes", maxRuleBytes)
		return nil, &RuleError{Col: maxRuleBytes + 1, Msg: msg}
	}
	p := &parser{src: src}
	p.next()
	if p.tok.kind == tokEOF {
		return nil, errAt(p.tok, "rule is empty")
	}

	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.misplaced(nil)
	}
	return e, nil
}

type tokenKind uint8

const (
	tokEOF     tokenKind = iota
	tokWord              // trait, segment reference, keyword or number
	tokLParen            // (
	tokRParen            // )
	tokGE                // >=
	tokGT                // >
	tokIllegal           // any other character
)

type token struct {
	kind tokenKind
	text string // slice of the source
	col  int
}

// parser reads one token ahead: tok is the next token not yet consumed.
type parser struct {
	src   string
	off   int // byte offset just past tok
	tok   token
	depth int
	atoms int
}

// next scans the token after p.tok into p.tok.
func (p *parser) next() {
	for p.off < len(p.src) && isSpace(p.src[p.off]) {
		p.off++
	}
	start := p.off
	p.tok = token{kind: p.scan(), col: start + 1}
	p.tok.text = p.src[start:p.off]
}

// scan consumes one token starting at p.off and returns its kind.
func (p *parser) scan() tokenKind {
	if p.off == len(p.src) {
		return tokEOF
	}
	c := p.src[p.off]
	p.off++
	switch {
	case c == '(':
		return tokLParen
	case c == ')':
		return tokRParen
	case c == '>' && p.off < len(p.src) && p.src[p.off] == '=':
		p.off++
		return tokGE
	case c == '>':
		return tokGT
	case isWordByte(c):
		for p.off < len(p.src) && isWordByte(p.src[p.off]) {
			p.off++
		}
		return tokWord
	}
	_, size := utf8.DecodeRuneInString(p.src[p.off-1:])
	p.off += size - 1
	return tokIllegal
}

// isKeyword reports whether the current token is the keyword kw, given in lowercase.
func (p *parser) isKeyword(kw string) bool {
	return p.tok.kind == tokWord && strings.EqualFold(p.tok.text, kw)
}

func (p *parser) parseOr() (Expr, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("or") {
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &OrExpr{L: l, R: r}
	}
	return l, nil
}

func (p *parser) parseAnd() (Expr, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("and") {
		p.next()
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l = &AndExpr{L: l, R: r}
	}
	return l, nil
}

func (p *parser) parseUnary() (Expr, error) {
	if !p.isKeyword("not") {
		return p.parsePrimary()
	}
	not := p.tok
	if err := p.enter(not); err != nil {
		return nil, err
	}
	p.next()

	x, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	p.depth--
	return &NotExpr{X: x, Col: not.col}, nil
}

func (p *parser) parsePrimary() (Expr, error) {
	switch {
	case p.tok.kind == tokLParen:
		return p.parseGroup()
	case p.isKeyword("count"):
		return p.parseCount()
	case p.tok.kind == tokWord && strings.IndexByte(p.tok.text, ':') >= 0:
		return p.parseAtom()
	}
	return nil, p.expectedTrait()
}

func (p *parser) parseGroup() (Expr, error) {
	open := p.tok
	if err := p.enter(open); err != nil {
		return nil, err
	}
	p.next()

	x, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokRParen {
		return nil, p.misplaced(&open)
	}
	p.depth--
	p.next()
	return x, nil
}

// parseAtom parses a trait, a trait with a window, or a segment reference.
func (p *parser) parseAtom() (Expr, error) {
	t := p.tok
	if err := p.addAtom(t); err != nil {
		return nil, err
	}
	if id, ok := strings.CutPrefix(t.text, "segment:"); ok {
		return p.parseSegment(t, id)
	}
	if err := checkTrait(t); err != nil {
		return nil, err
	}
	p.next()

	if !p.isKeyword("in") {
		return &TraitExpr{Name: t.text, Col: t.col}, nil
	}
	p.next()
	days, err := p.parseDays()
	if err != nil {
		return nil, err
	}
	return &WindowExpr{Name: t.text, Days: days, Col: t.col}, nil
}

func (p *parser) parseSegment(t token, id string) (Expr, error) {
	if !ValidID(id) {
		return nil, errAt(t, fmt.Sprintf("invalid segment ID %q: %s", id, idAdvice))
	}
	p.next()
	if p.isKeyword("in") {
		return nil, errAt(p.tok, "a segment reference cannot have a window")
	}
	return &SegmentExpr{ID: id, Col: t.col}, nil
}

// checkTrait validates a word that contains a colon; the lexer has already limited its bytes.
func checkTrait(t token) error {
	source, key, _ := strings.Cut(t.text, ":")
	if !ValidID(source) {
		return errAt(t, fmt.Sprintf("invalid trait source %q: %s", source, idAdvice))
	}
	if key == "" {
		return errAt(t, fmt.Sprintf("missing key after %q, as in %skey", t.text, t.text))
	}
	return nil
}

// parseCount parses count(TRAIT in Nd) >= K or count(TRAIT in Nd) > K.
func (p *parser) parseCount() (Expr, error) {
	kw := p.tok
	if err := p.addAtom(kw); err != nil {
		return nil, err
	}
	p.next()

	name, days, err := p.parseCountWindow()
	if err != nil {
		return nil, err
	}
	least, err := p.parseMin(days)
	if err != nil {
		return nil, err
	}
	return &CountExpr{Name: name, Days: days, Min: least, Col: kw.col}, nil
}

// parseCountWindow parses the parenthesised part of a count, from '(' to ')'.
func (p *parser) parseCountWindow() (string, int, error) {
	if p.tok.kind != tokLParen {
		return "", 0, p.expected("'(' after count")
	}
	p.next()
	name, err := p.parseCountTrait()
	if err != nil {
		return "", 0, err
	}

	if !p.isKeyword("in") {
		return "", 0, p.expected("a window like 'in 30d' inside count(...)")
	}
	p.next()
	days, err := p.parseDays()
	if err != nil {
		return "", 0, err
	}

	if p.tok.kind != tokRParen {
		return "", 0, p.expected("')' to close count(...)")
	}
	p.next()
	return name, days, nil
}

func (p *parser) parseCountTrait() (string, error) {
	t := p.tok
	if t.kind != tokWord || strings.IndexByte(t.text, ':') < 0 {
		return "", p.expectedTrait()
	}
	if strings.HasPrefix(t.text, "segment:") {
		return "", errAt(t, "count needs a trait, not a segment reference")
	}
	if err := checkTrait(t); err != nil {
		return "", err
	}
	p.next()
	return t.text, nil
}

// parseDays parses the days of a window, such as 30d, after the keyword in.
func (p *parser) parseDays() (int, error) {
	t := p.tok
	digits := leadingDigits(t.text)
	if t.kind != tokWord || digits == "" {
		return 0, p.expected("days like 30d")
	}

	switch unit := t.text[len(digits):]; {
	case unit == "":
		return 0, errAt(t, fmt.Sprintf("window %s needs a unit: write %sd", digits, digits))
	case unit != "d" && unit != "D":
		return 0, errAt(t, fmt.Sprintf("unknown window unit %q: only d (days) is supported", unit))
	}

	days := atoi(digits)
	switch {
	case days < 1:
		return 0, errAt(t, "window must be at least 1 day")
	case days > maxWindowDays:
		return 0, errAt(t, fmt.Sprintf("window must be at most %d days", maxWindowDays))
	}
	p.next()
	return days, nil
}

// parseMin parses the '>= K' or '> K' that ends a count and returns the minimum number of days.
func (p *parser) parseMin(days int) (int, error) {
	op := p.tok
	if op.kind != tokGE && op.kind != tokGT {
		return 0, p.expected("'>=' or '>' after count(...)")
	}
	p.next()

	t := p.tok
	if t.kind != tokWord || leadingDigits(t.text) != t.text {
		return 0, p.expected("a whole number after '" + op.text + "'")
	}
	least := atoi(t.text)
	if op.kind == tokGT {
		least++
	}

	switch {
	case least < 1:
		return 0, errAt(t, "count must be at least 1")
	case least > days:
		msg := fmt.Sprintf("count %s %s can never hold within %d days", op.text, t.text, days)
		return 0, errAt(t, msg)
	}
	p.next()
	return least, nil
}

// leadingDigits returns the ASCII digits at the start of s.
func leadingDigits(s string) string {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// atoi converts ASCII digits to an int, saturating far above every limit of the language.
func atoi(digits string) int {
	const ceiling = 1 << 20
	n := 0
	for i := 0; i < len(digits) && n < ceiling; i++ {
		n = n*10 + int(digits[i]-'0')
	}
	return min(n, ceiling)
}

// enter records one more level of nesting opened by t.
func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > maxRuleDepth {
		return errAt(t, fmt.Sprintf("rule nests deeper than %d levels", maxRuleDepth))
	}
	return nil
}

// addAtom counts the atom that starts at t.
func (p *parser) addAtom(t token) error {
	p.atoms++
	if p.atoms > maxRuleAtoms {
		return errAt(t, fmt.Sprintf("rule has more than %d atoms", maxRuleAtoms))
	}
	return nil
}

func errAt(t token, msg string) error {
	return &RuleError{Col: t.col, Msg: msg}
}

// expected reports that the current token is not what the grammar needs here.
func (p *parser) expected(want string) error {
	switch p.tok.kind {
	case tokEOF:
		return errAt(p.tok, "unexpected end of rule: expected "+want)
	case tokIllegal:
		return p.illegal()
	}
	return errAt(p.tok, "expected "+want+", found "+describe(p.tok))
}

// expectedTrait reports a token where an atom should start.
func (p *parser) expectedTrait() error {
	const want = "a trait like source:key"
	if p.tok.kind == tokWord && !isKeywordText(p.tok.text) {
		return errAt(p.tok, fmt.Sprintf("unknown word %q: expected %s", p.tok.text, want))
	}
	return p.expected(want)
}

// misplaced reports a token that follows a complete expression where only 'and', 'or' or the
// end of the enclosing group may come. open is the unclosed '(', or nil at the top level.
func (p *parser) misplaced(open *token) error {
	t := p.tok
	switch {
	case t.kind == tokIllegal:
		return p.illegal()
	case p.isKeyword("in"):
		return errAt(t, "a window like 'in 30d' can only follow a single trait")
	case open != nil && t.kind == tokEOF:
		return errAt(t, fmt.Sprintf("expected ')' to close '(' at column %d", open.col))
	case open != nil:
		return errAt(t, "expected 'and', 'or' or ')', found "+describe(t))
	case t.kind == tokRParen:
		return errAt(t, "unexpected ')' without a matching '('")
	}
	return errAt(t, "expected 'and', 'or' or end of rule, found "+describe(t))
}

func (p *parser) illegal() error {
	r, size := utf8.DecodeRuneInString(p.tok.text)
	if r == utf8.RuneError && size <= 1 {
		return errAt(p.tok, fmt.Sprintf("unexpected byte 0x%02x", p.tok.text[0]))
	}
	return errAt(p.tok, fmt.Sprintf("unexpected character %q", r))
}

func describe(t token) string {
	switch {
	case t.kind == tokEOF:
		return "end of rule"
	case t.kind == tokWord && isKeywordText(t.text):
		return "'" + strings.ToLower(t.text) + "'"
	case t.kind == tokWord:
		return strconv.Quote(t.text)
	}
	return "'" + t.text + "'"
}

func isKeywordText(s string) bool {
	for _, kw := range [...]string{"and", "or", "not", "count", "in"} {
		if strings.EqualFold(s, kw) {
			return true
		}
	}
	return false
}
