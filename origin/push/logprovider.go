package push

import (
	"context"
	"log/slog"

	"github.com/spark-edge/spark/origin/store"
)

// LogProvider writes notifications to a log instead of sending them: what
// `spark origin` uses for a platform without APNs or FCM configured (and
// so what `make run` shows). It logs the text, never the token.
type LogProvider struct {
	// Platform is the label of the devices it stands for.
	Platform store.Platform
	// Logger gets one line per notification.
	Logger *slog.Logger
}

var _ Provider = LogProvider{}

// Name implements Provider.
func (l LogProvider) Name() string { return "log" }

// Send implements Provider.
func (l LogProvider) Send(ctx context.Context, d store.Device, n Notification) error {
	l.Logger.Info("push notification (log provider: no "+string(l.Platform)+" service configured)",
		"user", n.UserID, "platform", d.Platform, "kind", n.Kind, "priority", n.Priority.String(), "quiet", n.Priority.Quiet(),
		"title", n.Title, "body", n.Body, "count", n.Count, "collapse_id", n.CollapseID, "locale", d.Locale)
	return nil
}
