package cache

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// Admin API paths of the purge.
const (
	// purgePath is the purge's route: the admin module's name, as Caddy's
	// own admin routes are named after theirs.
	purgePath = "/spark_cache/purge"
	// legacyPurgePath is the route's name before it was renamed; kept as an
	// alias for one release.
	legacyPurgePath = "/spark/purge"
)

// AdminAPI is the admin module admin.api.spark_cache: POST
// /spark_cache/purge on Caddy's admin endpoint removes entries by URI, tag
// or path prefix from every spark_cache whose purge_token the request
// carries (/spark/purge is the same route under its old name, for one
// release). Keep the admin endpoint on loopback (it can read and replace
// the whole config); to purge from other hosts, serve PurgeHandler on a
// private listener instead.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.spark_cache",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: purgePath, Handler: caddy.AdminHandlerFunc(serveAdminPurge)},
		{Pattern: legacyPurgePath, Handler: caddy.AdminHandlerFunc(serveLegacyAdminPurge)},
	}
}

// serveAdminPurge is the admin route: a purge of every cache whose token
// the request carries.
func serveAdminPurge(w http.ResponseWriter, r *http.Request) error {
	res, err := runPurge(w, r, "")
	if err != nil {
		var pe *purgeError
		if errors.As(err, &pe) {
			return caddy.APIError{HTTPStatus: pe.status, Err: pe.err}
		}
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(res)
}

// serveLegacyAdminPurge is serveAdminPurge under the old path, pointing to
// the new one (RFC 8288's successor-version link) and logging that it was
// used.
func serveLegacyAdminPurge(w http.ResponseWriter, r *http.Request) error {
	caddy.Log().Named("admin.api.spark_cache").Warn("deprecated admin path; use "+purgePath,
		zap.String("path", legacyPurgePath))
	w.Header().Set("Link", "<"+purgePath+`>; rel="successor-version"`)
	return serveAdminPurge(w, r)
}

// PurgeHandler is the HTTP handler http.handlers.spark_purge: the JSON purge
// API of POST /spark_cache/purge, with the named cache's purge_token, on a
// listener of the operator's choosing (a site bound to a private address),
// so that the admin endpoint can stay on loopback. It answers every request
// it gets: give it a matcher or a site of its own.
type PurgeHandler struct {
	// Cache names the spark_cache whose entries it removes (its `name`).
	// Default: "default".
	Cache string `json:"cache,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (PurgeHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.spark_purge",
		New: func() caddy.Module { return new(PurgeHandler) },
	}
}

// Provision fills in the default cache name.
func (h *PurgeHandler) Provision(caddy.Context) error {
	if h.Cache == "" {
		h.Cache = "default"
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; it never calls next.
func (h *PurgeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	res, err := runPurge(w, r, h.Cache)
	if err != nil {
		var pe *purgeError
		if !errors.As(err, &pe) {
			return err
		}
		// The admin API's error body: {"error": "..."}.
		w.WriteHeader(pe.status)
		return json.NewEncoder(w).Encode(map[string]string{"error": pe.err.Error()})
	}
	return json.NewEncoder(w).Encode(res)
}

// Interface guards
var (
	_ caddy.AdminRouter           = AdminAPI{}
	_ caddy.Provisioner           = (*PurgeHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*PurgeHandler)(nil)
)
