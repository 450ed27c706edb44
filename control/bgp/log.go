package bgp

import (
	"fmt"
	"sort"
	"sync/atomic"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"go.uber.org/zap"
)

// zapLogger adapts zap to gobgp's logger interface. gobgp's debug output
// (every keepalive, every connect attempt) is dropped unless someone raises
// the level through SetLevel.
type zapLogger struct {
	z     *zap.Logger
	level atomic.Uint32 // a gobgplog.LogLevel
}

var _ gobgplog.Logger = (*zapLogger)(nil)

func newZapLogger(z *zap.Logger) *zapLogger {
	l := &zapLogger{z: z}
	l.level.Store(uint32(gobgplog.InfoLevel))
	return l
}

func (l *zapLogger) enabled(lv gobgplog.LogLevel) bool {
	return lv <= gobgplog.LogLevel(l.level.Load())
}

// fields turns gobgp's map into zap fields in a stable (sorted) order.
func fields(f gobgplog.Fields) []zap.Field {
	if len(f) == 0 {
		return nil
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	zf := make([]zap.Field, 0, len(keys))
	for _, k := range keys {
		zf = append(zf, zap.Any(k, f[k]))
	}
	return zf
}

// Panic keeps gobgp's contract (it does not return) but leaves the choice
// of crashing the process to whoever recovers.
func (l *zapLogger) Panic(msg string, f gobgplog.Fields) {
	l.z.Error(msg, fields(f)...)
	panic(fmt.Sprintf("gobgp: %s", msg))
}

// Fatal panics instead of exiting: a library must not call os.Exit under
// the daemon's feet, and deferred cleanup (XDP detach) should still run.
func (l *zapLogger) Fatal(msg string, f gobgplog.Fields) {
	l.z.Error(msg, fields(f)...)
	panic(fmt.Sprintf("gobgp: fatal: %s", msg))
}

func (l *zapLogger) Error(msg string, f gobgplog.Fields) {
	if l.enabled(gobgplog.ErrorLevel) {
		l.z.Error(msg, fields(f)...)
	}
}

func (l *zapLogger) Warn(msg string, f gobgplog.Fields) {
	if l.enabled(gobgplog.WarnLevel) {
		l.z.Warn(msg, fields(f)...)
	}
}

func (l *zapLogger) Info(msg string, f gobgplog.Fields) {
	if l.enabled(gobgplog.InfoLevel) {
		l.z.Info(msg, fields(f)...)
	}
}

func (l *zapLogger) Debug(msg string, f gobgplog.Fields) {
	if l.enabled(gobgplog.DebugLevel) {
		l.z.Debug(msg, fields(f)...)
	}
}

func (l *zapLogger) SetLevel(lv gobgplog.LogLevel) { l.level.Store(uint32(lv)) }

func (l *zapLogger) GetLevel() gobgplog.LogLevel { return gobgplog.LogLevel(l.level.Load()) }
