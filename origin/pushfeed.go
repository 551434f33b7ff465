package origin

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spark-edge/spark/origin/push"
	"github.com/spark-edge/spark/origin/store"
)

// PushEnqueuer takes the events that may become push notifications
// (*push.Notifier); Enqueue never blocks.
type PushEnqueuer interface {
	// Enqueue hands ev over; false when it was dropped.
	Enqueue(ev push.Event) bool
}

// PushConfig is the push notifier's part of Config.
type PushConfig struct {
	// Disabled turns push notifications off.
	Disabled bool
	// Window and BatchSize: a user's events are gathered for Window, or
	// until BatchSize of them (push.Options; 0: 2 s and 50).
	Window    time.Duration
	BatchSize int
	// QueueSize bounds the events waiting (0: 100,000); beyond, dropped.
	QueueSize int
	// MaxAge drops a notification a provider did not take this long after
	// its event (0: 1 h).
	MaxAge time.Duration
	// APNs: a .p8 key file with its key id and the team id; URL empty:
	// production (push.APNsSandbox for development builds). Without a key
	// file iOS notifications are logged, not sent.
	APNsKeyFile, APNsKeyID, APNsTeamID, APNsURL string
	// FCM: a service account key file; URL empty: push.FCMURL. Without it
	// Android notifications are logged, not sent.
	FCMCredentialsFile, FCMURL string
}

// NewPushNotifier builds the notifier Run uses: APNs and FCM when their
// credentials are configured, else a push.LogProvider per platform.
// Credentials are read from the files and never logged.
func NewPushNotifier(cfg PushConfig, dir push.Directory, presence push.Presence, reg prometheus.Registerer, log *slog.Logger) (*push.Notifier, error) {
	providers := map[store.Platform]push.Provider{}
	switch {
	case cfg.APNsKeyFile != "":
		key, err := push.LoadAPNsKey(cfg.APNsKeyFile)
		if err != nil {
			return nil, err
		}
		p, err := push.NewAPNs(push.APNsOptions{URL: cfg.APNsURL, KeyID: cfg.APNsKeyID, TeamID: cfg.APNsTeamID, Key: key})
		if err != nil {
			return nil, err
		}
		providers[store.IOS] = p
	case cfg.APNsKeyID != "" || cfg.APNsTeamID != "":
		return nil, errors.New("origin: --apns-key-id and --apns-team-id need --apns-key-file")
	default:
		providers[store.IOS] = push.LogProvider{Platform: store.IOS, Logger: log}
	}
	if cfg.FCMCredentialsFile != "" {
		sa, err := push.LoadFCMCredentials(cfg.FCMCredentialsFile)
		if err != nil {
			return nil, err
		}
		p, err := push.NewFCM(push.FCMOptions{URL: cfg.FCMURL, CredentialsJSON: sa})
		if err != nil {
			return nil, err
		}
		providers[store.Android] = p
	} else {
		providers[store.Android] = push.LogProvider{Platform: store.Android, Logger: log}
	}
	n, err := push.New(push.Options{Directory: dir, Presence: presence, Providers: providers, Window: cfg.Window,
		BatchSize: cfg.BatchSize, QueueSize: cfg.QueueSize, MaxAge: cfg.MaxAge, Registerer: reg, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("origin: push notifier: %w", err)
	}
	log.Info("push notifications on", "ios", providers[store.IOS].Name(), "android", providers[store.Android].Name())
	return n, nil
}

// pushMessages enqueues a notification for the recipient of each message
// stored (retries, Created false, were notified the first time).
func (s *Server) pushMessages(res []store.SendResult) {
	if s.push == nil {
		return
	}
	for _, r := range res {
		if r.Err != nil || !r.Created {
			continue
		}
		for _, e := range r.Events {
			if e.UserID == r.Message.SenderID {
				continue
			}
			s.push.Enqueue(push.Event{Kind: push.KindMessage, UserID: e.UserID, FromID: r.Message.SenderID,
				ConversationID: r.Message.ConversationID, MessageID: r.Message.ID, Body: r.Message.Body})
		}
	}
}

// pushSwipe enqueues what a new swipe tells its target: a match (high),
// or a like (low). The swiper learns of the match in the answer.
func (s *Server) pushSwipe(me, target int64, res store.SwipeResult) {
	if s.push == nil || !res.Created {
		return
	}
	switch {
	case res.Match != nil:
		s.push.Enqueue(push.Event{Kind: push.KindMatch, UserID: target, FromID: me, ConversationID: res.Match.ConversationID})
	case res.Direction.Positive():
		s.push.Enqueue(push.Event{Kind: push.KindLike, UserID: target, FromID: me})
	}
}
