package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/segd/segd/bidder"
	"github.com/segd/segd/segments"
	"github.com/segd/segd/store"
)

// runServe runs `segd serve` until ctx is cancelled, then shuts down gracefully.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()
	a, err := startApp(ctx, cfg, log, stdout)
	if err != nil {
		return err
	}
	defer a.close()
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return nil
	case err := <-a.lis.failed:
		return err
	}
}

// app is a running segd: the index, its store and the listeners.
type app struct {
	cfg *config
	log *zap.Logger
	ix  *segments.Index
	db  *store.DB
	lis *listeners
}

// startApp opens the store, starts the listeners (which pass requests through unchanged
// until the index is loaded), loads the index and, with --demo, the demo data.
func startApp(ctx context.Context, cfg *config, log *zap.Logger, stdout io.Writer) (*app, error) {
	if cfg.IDSecret == "" {
		cfg.IDSecret = demoSecret
		log.Warn("using the public demo ID secret: IDs are not protected; set SEGD_ID_SECRET")
	}
	a := &app{cfg: cfg, log: log}
	a.ix = segments.New(segments.NewHasher([]byte(cfg.IDSecret)),
		segments.Provider{ID: cfg.ProviderID, Name: cfg.ProviderName})
	a.ix.SetRetention(cfg.EventRetention)
	db, err := store.Open(store.Config{Dir: cfg.DataDir, MemTableSize: cfg.MemTableSize,
		BlockCacheSize: cfg.BlockCacheSize, EventSkew: cfg.EventSkew}, a.ix, log)
	if err != nil {
		return nil, err
	}
	a.db = db
	if a.lis, err = startListeners(cfg, a.ix, db, log); err != nil {
		a.close()
		return nil, err
	}
	if err := loadIndex(ctx, cfg, db, a.ix, log, stdout); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// close stops the listeners, letting in-flight requests finish, then closes the store.
func (a *app) close() {
	if a.lis != nil {
		a.lis.shutdown(a.cfg.ShutdownTimeout, a.log)
	}
	start := time.Now()
	if err := a.db.Close(); err != nil {
		a.log.Error("close store failed", zap.Error(err))
		return
	}
	a.log.Info("store closed", zap.Duration("took", time.Since(start)))
}

func loadIndex(ctx context.Context, cfg *config, db *store.DB, ix *segments.Index,
	log *zap.Logger, stdout io.Writer) error {
	st, err := db.Load(ctx)
	if err != nil {
		return err
	}
	log.Info("index loaded", zap.Int("profiles", st.Profiles), zap.Int("segments", st.Segments),
		zap.Int("sources", st.Sources), zap.Int("traits", st.Traits), zap.Duration("took", st.Took))
	if !cfg.Demo {
		return nil
	}
	if st.Sources == 0 {
		if err := loadDemo(ctx, cfg, db, log); err != nil {
			return err
		}
	}
	printExample(stdout, cfg)
	return nil
}

type listeners struct {
	bid       *bidder.Server
	admin     *http.Server
	bidAddr   string // as bound, with the port chosen
	adminAddr string
	failed    chan error

	collect     *bidder.Collector // nil when --collect-addr is empty
	collectAddr string
}

func startListeners(cfg *config, ix *segments.Index, db *store.DB, log *zap.Logger) (
	*listeners, error) {
	m := &bidder.Metrics{}
	bid, err := bidder.NewServer(bidder.Config{
		ProviderID: cfg.ProviderID, MaxBodySize: cfg.MaxBodySize,
		MaxHeaderSize: cfg.MaxHeaderSize, ReadTimeout: cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout,
		Upstream: cfg.Upstream, UpstreamTimeout: cfg.UpstreamTimeout,
		TmaxMargin: cfg.TmaxMargin, MaxBudget: cfg.MaxBudget, MaxInflight: cfg.MaxInflight,
		Privacy: bidder.PrivacyConfig{GVLVendorID: uint16(cfg.GVLVendorID),
			GDPRWhenUnknown: cfg.GDPRDefault == 1, IgnoreGPC: cfg.IgnoreGPC},
		Callers: cfg.Callers, RequireCaller: cfg.RequireCaller,
	}, ix, m, log)
	if err != nil {
		return nil, err
	}
	bidLn, err := net.Listen("tcp", cfg.BidAddr)
	if err != nil {
		return nil, fmt.Errorf("bid listener: %w", err)
	}
	l := &listeners{bid: bid, bidAddr: bidLn.Addr().String(), failed: make(chan error, 3)}
	go func() {
		if err := bid.Serve(bidLn); err != nil {
			l.failed <- fmt.Errorf("bid listener: %w", err)
		}
	}()
	log.Info("bid listener started", zap.String("addr", bidLn.Addr().String()),
		zap.Bool("proxy", cfg.Upstream != ""))
	if err := l.startCollect(cfg, db, log); err != nil {
		bid.Shutdown()
		return nil, err
	}

	if cfg.AdminAddr == "" {
		return l, nil
	}
	adminLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		bid.Shutdown()
		l.shutdownCollect(log)
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	l.adminAddr = adminLn.Addr().String()
	l.admin = &http.Server{
		Handler: bidder.NewAdmin(bidder.AdminConfig{Token: cfg.AdminToken, Explainer: bid,
			MaxIngestStreams: cfg.MaxIngestStreams, IngestRate: cfg.IngestRate},
			ix, db, m, log),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		if err := l.admin.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.failed <- fmt.Errorf("admin listener: %w", err)
		}
	}()
	log.Info("admin listener started", zap.String("addr", adminLn.Addr().String()),
		zap.Bool("token", cfg.AdminToken != ""))
	return l, nil
}

// startCollect starts the public collect listener when --collect-addr is set.
func (l *listeners) startCollect(cfg *config, db *store.DB, log *zap.Logger) error {
	if cfg.CollectAddr == "" {
		return nil
	}
	c, err := bidder.NewCollector(cfg.collectConfig(), db, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.CollectAddr)
	if err != nil {
		return fmt.Errorf("collect listener: %w", err)
	}
	l.collect, l.collectAddr = c, ln.Addr().String()
	go func() {
		if err := c.Serve(ln); err != nil {
			l.failed <- fmt.Errorf("collect listener: %w", err)
		}
	}()
	log.Info("collect listener started", zap.String("addr", l.collectAddr),
		zap.String("source", cfg.CollectSource), zap.String("id_type", cfg.CollectIDType))
	return nil
}

func (l *listeners) shutdownCollect(log *zap.Logger) {
	if l.collect == nil {
		return
	}
	if err := l.collect.Shutdown(); err != nil {
		log.Warn("collect listener shutdown failed", zap.Error(err))
	}
}

// shutdown stops accepting, lets in-flight requests finish within timeout, and returns.
func (l *listeners) shutdown(timeout time.Duration, log *zap.Logger) {
	start := time.Now()
	done := make(chan struct{})
	go func() {
		if err := l.bid.Shutdown(); err != nil {
			log.Warn("bid listener shutdown failed", zap.Error(err))
		}
		l.shutdownCollect(log)
		close(done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if l.admin != nil {
		if err := l.admin.Shutdown(ctx); err != nil {
			log.Warn("admin listener shutdown failed", zap.Error(err))
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		log.Warn("bid listener shutdown timed out", zap.Duration("timeout", timeout))
	}
	log.Info("listeners stopped", zap.Duration("took", time.Since(start)))
}

func newLogger(cfg *config, stderr io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("log-level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder = zapcore.NewJSONEncoder(encCfg)
	if cfg.LogFormat == "console" {
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.AddSync(stderr), level)
	return zap.New(core), nil
}
