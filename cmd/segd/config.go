package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/segd/segd/bidder"
)

// config is every setting of `segd serve`. Defaults live in bindFlags, which is the one
// place a setting is declared; the YAML key is the flag name with '_' for '-', and the
// environment variable is SEGD_ and the key in capitals.
type config struct {
	ConfigFile      string
	DataDir         string
	BidAddr         string
	AdminAddr       string
	ProviderID      string
	ProviderName    string
	Upstream        string
	UpstreamTimeout time.Duration
	GVLVendorID     int
	GDPRDefault     int
	IgnoreGPC       bool
	TmaxMargin      time.Duration
	MaxBudget       time.Duration
	MaxInflight     int
	// MaxIngestStreams and IngestRate limit imports and event batches; see
	// bidder.AdminConfig.
	MaxIngestStreams int
	IngestRate       int
	IDSecret         string
	AdminToken       string
	MaxBodySize      int
	MaxHeaderSize    int
	ReadTimeout      time.Duration
	WriteTimeout     time.Duration
	IdleTimeout      time.Duration
	MemTableSize     int64
	BlockCacheSize   int64
	LogLevel         string
	LogFormat        string
	Demo             bool
	DemoProfiles     int
	ShutdownTimeout  time.Duration
	EventRetention   int
	EventSkew        time.Duration

	// The collect listener; see bidder.CollectConfig.
	CollectAddr          string
	CollectSource        string
	CollectIDType        string
	CollectCookieDomain  string
	CollectCookieTTL     time.Duration
	CollectRedirectHosts string // comma list

	// Callers come only from the YAML file, as a list under "callers"; see callerYAML.
	Callers       []bidder.Caller
	RequireCaller bool
}

// callerYAML is one entry of the config file's callers list. The key is given either
// in the file or, better, as the name of an environment variable that holds it.
type callerYAML struct {
	Name     string   `yaml:"name"`
	Key      string   `yaml:"key"`
	KeyEnv   string   `yaml:"key_env"`
	Segments []string `yaml:"segments"`
	Segtax   []int    `yaml:"segtax"`
}

func bindFlags(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.ConfigFile, "config", "", "YAML file of settings (keys as below, with _ for -)")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "Badger data folder, created if missing")
	fs.StringVar(&c.BidAddr, "bid-addr", ":8080", "bid listener address")
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:8081",
		"admin listener address; beyond loopback it requires --admin-token")
	fs.StringVar(&c.ProviderID, "provider-id", "segd", "user.data id that segd writes")
	fs.StringVar(&c.ProviderName, "provider-name", "segd", "user.data name that segd writes")
	fs.StringVar(&c.Upstream, "upstream", "",
		"bidder URL for POST /openrtb2/auction (proxy mode); empty: off")
	fs.DurationVar(&c.UpstreamTimeout, "upstream-timeout", time.Second,
		"upstream deadline for requests without tmax")
	fs.IntVar(&c.GVLVendorID, "gvl-vendor-id", 0,
		"your IAB GVL vendor ID; a TCF string must consent to it (0: GDPR traffic never enriched)")
	fs.IntVar(&c.GDPRDefault, "gdpr-default", 0,
		"whether GDPR applies to a request without a gdpr flag and consent string: 0 or 1")
	fs.BoolVar(&c.IgnoreGPC, "ignore-gpc", false,
		"ignore the Sec-GPC header (by default it counts as a US opt-out of sale and sharing)")
	fs.DurationVar(&c.TmaxMargin, "tmax-margin", 10*time.Millisecond,
		"part of a request's tmax left to the caller: the budget is tmax less this")
	fs.DurationVar(&c.MaxBudget, "max-budget", 20*time.Millisecond,
		"most time spent on one bid request; later ones come back unchanged")
	fs.IntVar(&c.MaxInflight, "max-inflight", 1024,
		"bid requests handled at once; more are answered unchanged (503 in proxy mode)")
	fs.IntVar(&c.MaxIngestStreams, "max-ingest-streams", 4,
		"imports and event batches that may run at once; more get 429")
	fs.IntVar(&c.IngestRate, "ingest-rate", 0,
		"lines per second that imports and event batches read together; 0: no limit")
	fs.StringVar(&c.IDSecret, "id-secret", "",
		"secret key for hashing IDs (required; prefer SEGD_ID_SECRET)")
	fs.StringVar(&c.AdminToken, "admin-token", "",
		"bearer token for the admin API; empty: none (loopback only)")
	fs.IntVar(&c.MaxBodySize, "max-body-size", 256<<10, "largest bid request in bytes (413 above)")
	fs.IntVar(&c.MaxHeaderSize, "max-header-size", 8<<10,
		"largest request header in bytes (431 above)")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", 5*time.Second, "bid connection read timeout")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 5*time.Second, "bid connection write timeout")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 60*time.Second, "bid keep-alive idle timeout")
	fs.Int64Var(&c.MemTableSize, "badger-memtable-size", 64<<20, "Badger memtable size in bytes")
	fs.Int64Var(&c.BlockCacheSize, "badger-block-cache-size", 64<<20,
		"Badger block cache size in bytes")
	fs.IntVar(&c.EventRetention, "event-retention", 180,
		"days of first-party events kept; rule windows may not be longer")
	fs.DurationVar(&c.EventSkew, "event-skew", 5*time.Minute,
		"how far in the future an event may be dated")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "json", "json or console")
	fs.BoolVar(&c.Demo, "demo", false,
		"load demo data into an empty store, allow the demo ID secret, print an example request")
	fs.IntVar(&c.DemoProfiles, "demo-profiles", 100000, "profiles generated by --demo")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second,
		"how long SIGTERM waits for in-flight requests")
	fs.StringVar(&c.CollectAddr, "collect-addr", "",
		"public collect listener address (pixel /px, ID sync /sync); empty: off")
	fs.StringVar(&c.CollectSource, "collect-source", "web",
		"source that collected events are recorded under; define it first")
	fs.StringVar(&c.CollectIDType, "collect-id-type", "buid",
		"ID type of the cookie ID in bid requests: buid (DSP), uid (SSP) or eid:<source>")
	fs.StringVar(&c.CollectCookieDomain, "collect-cookie-domain", "",
		"Domain of the collect cookie; empty: host-only")
	fs.DurationVar(&c.CollectCookieTTL, "collect-cookie-ttl", 390*24*time.Hour,
		"lifetime of the collect cookie, renewed on every visit; at most 400 days")
	fs.StringVar(&c.CollectRedirectHosts, "collect-redirect-hosts", "",
		"comma list of hosts /sync may redirect to; .example.com: any host below it")
	fs.BoolVar(&c.RequireCaller, "require-caller", false,
		"answer unchanged every bid request without an "+bidder.CallerHeader+
			" header (callers are listed in the config file)")
}

// demoSecret is the ID secret of --demo. It is public, so data hashed with it is not
// protected; segd says so when it uses it.
const demoSecret = "segd-demo-secret-not-for-production"

// loadConfig builds the configuration: defaults, then the YAML file, then flags given on
// the command line, then SEGD_* environment variables, each overriding the one before.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("segd serve", flag.ContinueOnError)
	fs.SetOutput(usage)
	bindFlags(fs, c)
	fs.Usage = func() { printUsage(usage, fs) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]string{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = f.Value.String() })

	if c.ConfigFile != "" {
		if err := applyYAML(fs, c, c.ConfigFile, getenv); err != nil {
			return nil, err
		}
	}
	for name, v := range given {
		fs.Set(name, v) // it parsed once already
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, c.validate()
}

func envName(flagName string) string {
	return "SEGD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func applyYAML(fs *flag.FlagSet, c *config, path string, getenv func(string) string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if k == "callers" {
			if err := c.readCallers(m[k], getenv); err != nil {
				errs = append(errs, fmt.Errorf("config %s: %w", path, err))
			}
			continue
		}
		name := strings.ReplaceAll(k, "_", "-")
		if fs.Lookup(name) == nil || name == "config" {
			errs = append(errs, fmt.Errorf("config %s: unknown setting %q", path, k))
			continue
		}
		if err := fs.Set(name, fmt.Sprint(m[k])); err != nil {
			errs = append(errs, fmt.Errorf("config %s: %s: %w", path, k, err))
		}
	}
	return errors.Join(errs...)
}

// readCallers decodes v, the callers list of the YAML file, taking each key from the file
// or from the environment variable that key_env names. An unknown field is an error.
func (c *config) readCallers(v any, getenv func(string) string) error {
	raw, err := yaml.Marshal(v) // v came from YAML, so it goes back
	if err != nil {
		return fmt.Errorf("callers: %w", err)
	}
	var list []callerYAML
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil {
		return fmt.Errorf("callers: want a list of {name, key or key_env, segments, segtax}: %w", err)
	}
	var errs []error
	for i, y := range list {
		key := y.Key
		switch {
		case y.Key != "" && y.KeyEnv != "":
			errs = append(errs, fmt.Errorf("callers[%d] %q: give key or key_env, not both", i, y.Name))
		case y.KeyEnv != "":
			if key = getenv(y.KeyEnv); key == "" {
				errs = append(errs, fmt.Errorf("callers[%d] %q: %s is not set", i, y.Name, y.KeyEnv))
			}
		case y.Key == "":
			errs = append(errs, fmt.Errorf("callers[%d] %q: no key or key_env", i, y.Name))
		}
		cl := bidder.Caller{Key: key}
		cl.Name, cl.Segments, cl.Segtax = y.Name, y.Segments, y.Segtax
		c.Callers = append(c.Callers, cl)
	}
	return errors.Join(errs...)
}

// validate reports every problem at once.
func (c *config) validate() error {
	var errs []error
	if c.IDSecret == "" && !c.Demo {
		errs = append(errs, errors.New(
			"no ID secret: set SEGD_ID_SECRET (or id_secret in the config file)"))
	}
	if c.IDSecret != "" && len(c.IDSecret) < 16 {
		errs = append(errs, errors.New("the ID secret must be at least 16 bytes"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir must not be empty"))
	}
	if c.AdminAddr != "" && !isLoopback(c.AdminAddr) && c.AdminToken == "" {
		errs = append(errs, fmt.Errorf(
			"admin-addr %s is beyond loopback: set SEGD_ADMIN_TOKEN", c.AdminAddr))
	}
	for name, addr := range map[string]string{"bid-addr": c.BidAddr, "admin-addr": c.AdminAddr} {
		if _, _, err := net.SplitHostPort(addr); addr != "" && err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, addr, err))
		}
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log-format %q: want json or console", c.LogFormat))
	}
	if c.GVLVendorID < 0 || c.GVLVendorID > 65535 {
		errs = append(errs, errors.New("gvl-vendor-id: want 0 to 65535"))
	}
	if c.MaxIngestStreams < 1 {
		errs = append(errs, errors.New("max-ingest-streams: want at least 1"))
	}
	if c.IngestRate < 0 {
		errs = append(errs, errors.New("ingest-rate: want 0 (no limit) or more"))
	}
	if c.GDPRDefault != 0 && c.GDPRDefault != 1 {
		errs = append(errs, errors.New("gdpr-default: want 0 or 1"))
	}
	if c.EventRetention < 1 || c.EventRetention > 3650 {
		errs = append(errs, errors.New("event-retention: want 1 to 3650 days"))
	}
	if c.DemoProfiles < 0 {
		errs = append(errs, errors.New("demo-profiles must not be negative"))
	}
	if c.CollectAddr != "" {
		if _, _, err := net.SplitHostPort(c.CollectAddr); err != nil {
			errs = append(errs, fmt.Errorf("collect-addr %q: %w", c.CollectAddr, err))
		}
		cc := c.collectConfig()
		if err := cc.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("collect: %w", err))
		}
	}
	return errors.Join(errs...)
}

// collectConfig is the collect listener's part of c.
func (c *config) collectConfig() bidder.CollectConfig {
	cc := bidder.CollectConfig{Source: c.CollectSource, IDType: c.CollectIDType,
		CookieDomain: c.CollectCookieDomain, CookieTTL: c.CollectCookieTTL}
	for h := range strings.SplitSeq(c.CollectRedirectHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cc.RedirectHosts = append(cc.RedirectHosts, h)
		}
	}
	return cc
}

// isLoopback reports whether addr binds only to the loopback interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: segd serve [flags]

Runs the bid listener (enrichment and proxy) and the admin listener.
Settings come from defaults, then --config FILE (YAML), then flags, then SEGD_*
environment variables, each overriding the one before.

`)
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def == "" {
			def = `""`
		}
		key := strings.ReplaceAll(f.Name, "-", "_")
		fmt.Fprintf(w, "  --%s\n      %s\n      default %s; yaml %s; env %s\n",
			f.Name, f.Usage, def, key, envName(f.Name))
	})
}
