package cometbft

import (
	"context"
	"log/slog"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// NewLogHandler returns a slog.Handler that writes to a CometBFT logger,
// so that pex logs where the node does: records below slog.LevelInfo go
// to Debug, those below slog.LevelWarn to Info, the rest (warnings and
// errors; CometBFT has no warning level) to Error, with their attributes
// as key-value pairs. Attributes in groups get dotted keys ("group.key").
// Every record is passed on: the CometBFT logger filters by level itself.
func NewLogHandler(logger cmtlog.Logger) slog.Handler {
	if logger == nil {
		logger = cmtlog.NewNopLogger()
	}
	return &logHandler{logger: logger}
}

type logHandler struct {
	logger cmtlog.Logger
	prefix string // the open groups, each followed by "."
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	kv := make([]any, 0, 2*r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		kv = appendAttr(kv, h.prefix, a)
		return true
	})
	switch {
	case r.Level < slog.LevelInfo:
		h.logger.Debug(r.Message, kv...)
	case r.Level < slog.LevelWarn:
		h.logger.Info(r.Message, kv...)
	default:
		h.logger.Error(r.Message, kv...)
	}
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var kv []any
	for _, a := range attrs {
		kv = appendAttr(kv, h.prefix, a)
	}
	if len(kv) == 0 {
		return h
	}
	return &logHandler{logger: h.logger.With(kv...), prefix: h.prefix}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{logger: h.logger, prefix: h.prefix + name + "."}
}

// appendAttr appends a's key-value pairs to kv, flattening groups.
func appendAttr(kv []any, prefix string, a slog.Attr) []any {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			kv = appendAttr(kv, p, g)
		}
		return kv
	}
	if a.Key == "" && v.Any() == nil {
		return kv // an empty attribute, which slog handlers ignore
	}
	return append(kv, prefix+a.Key, v.Any())
}
