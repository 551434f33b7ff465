package origin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spark-edge/spark/imageproxy"
	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/origin/store"
)

// Photo upload defaults.
const (
	DefaultPhotoMaxBytes  = 10 << 20   // encoded upload
	DefaultPhotoMaxPixels = 50_000_000 // declared width × height (PNG and lossless WebP: half)
	DefaultMaxPhotos      = 6          // uploads per user
	// PhotoCacheControl is sent with originals: a name is never reused
	// for other bytes, so edges and browsers keep them for a year.
	PhotoCacheControl = "public, max-age=31536000, immutable"
	// multipartSlack is what a multipart body may hold beside the photo:
	// boundaries, part headers, small fields.
	multipartSlack = 64 << 10
)

// uploadPattern is the upload route; ServeHTTP gives it UploadTimeout.
const uploadPattern = "POST /api/users/me/photos"

// diskFullRetryAfter is the Retry-After of an upload refused because the
// photo storage is full (an operator has to free space: minutes, not
// seconds).
const diskFullRetryAfter = 5 * time.Minute

// PhotoOptions configures photo uploads; zero fields take the defaults.
type PhotoOptions struct {
	// Storage keeps the originals. Nil disables the photo routes (404).
	Storage PhotoStorage
	// Processor normalises uploads; nil: one whose limits are MaxBytes
	// and MaxPixels (imageproxy's defaults otherwise).
	Processor *imageproxy.Processor
	MaxBytes  int64 // largest upload body, DefaultPhotoMaxBytes
	MaxPixels int64 // largest declared image, DefaultPhotoMaxPixels
	MaxPhotos int   // uploads per user, DefaultMaxPhotos
	MaxSide   int   // long side of stored originals, imageproxy.DefaultOriginalSide
	// MaxInFlight bounds the uploads being received or processed at once,
	// so their bodies (up to MaxBytes each) bound memory; more get 503
	// with Retry-After. Default DefaultPhotoInFlight.
	MaxInFlight int
}

// DefaultPhotoInFlight is the default PhotoOptions.MaxInFlight: with 10 MB
// bodies, at most about 320 MB of uploads in memory.
const DefaultPhotoInFlight = 32

func (o *PhotoOptions) withDefaults() error {
	o.MaxBytes = cmp.Or(o.MaxBytes, DefaultPhotoMaxBytes)
	o.MaxPixels = cmp.Or(o.MaxPixels, DefaultPhotoMaxPixels)
	o.MaxPhotos = cmp.Or(o.MaxPhotos, DefaultMaxPhotos)
	o.MaxSide = cmp.Or(o.MaxSide, imageproxy.DefaultOriginalSide)
	o.MaxInFlight = cmp.Or(o.MaxInFlight, DefaultPhotoInFlight)
	if o.MaxBytes < 0 || o.MaxPixels < 0 || o.MaxPhotos < 0 || o.MaxSide < 0 || o.MaxInFlight < 0 {
		return fmt.Errorf("origin: photo limits must not be negative: %+v", *o)
	}
	if o.Storage == nil || o.Processor != nil {
		return nil
	}
	p, err := imageproxy.New(imageproxy.Config{Limits: imageproxy.Limits{MaxSourceBytes: o.MaxBytes, MaxSourcePixels: o.MaxPixels}})
	if err != nil {
		return fmt.Errorf("origin: photo processor: %w", err)
	}
	o.Processor = p
	return nil
}

// PhotoPath is the URL path of an uploaded original: the origin serves it
// there, and an edge whose spark_image handles the same path (strip_prefix
// /api/users, upstream http://origin/api/users) serves its variants.
func PhotoPath(user int64, name string) string {
	return "/api/users/" + strconv.FormatInt(user, 10) + "/photos/" + name
}

// PhotoTag is the cache tag of an uploaded photo: the one spark_image puts
// on every variant ("photo:" + the request path without its strip_prefix
// /api/users, i.e. "photo:42/photos/<name>") and the origin puts on the
// original. Spark-Purge with it removes every variant at every edge.
func PhotoTag(user int64, name string) string {
	return contract.PhotoTag(strconv.FormatInt(user, 10) + "/photos/" + name)
}

// photoList is the profile's photos field: the uploads, oldest first, as
// paths on the origin (and every edge). Photo URLs stored by older
// versions (any http(s) URL was accepted) are never sent: a photo on a host
// of the owner's choosing would collect viewers' IP addresses.
func photoList(p store.Profile) []string {
	out := make([]string, 0, len(p.Uploads))
	for _, n := range p.Uploads {
		out = append(out, PhotoPath(p.ID, n))
	}
	return out
}

// isUploadPathOf reports whether s names an uploaded original of user me,
// as photoList writes it.
func isUploadPathOf(me int64, s string) bool {
	name, ok := strings.CutPrefix(s, PhotoPath(me, ""))
	return ok && ValidPhotoName(name)
}

// photoRequestError maps imageproxy's refusals to problems.
func photoRequestError(w http.ResponseWriter, err error) error {
	switch {
	case errors.Is(err, imageproxy.ErrUnsupported):
		return &requestError{status: http.StatusUnsupportedMediaType, code: "unsupported-image",
			msg: "only JPEG, PNG, WebP and HEIF/AVIF photos are accepted"}
	case errors.Is(err, imageproxy.ErrSourceTooLarge):
		return &requestError{status: http.StatusUnprocessableEntity, code: "image-too-large", msg: err.Error()}
	case errors.Is(err, imageproxy.ErrCorrupt):
		return &requestError{status: http.StatusUnprocessableEntity, code: "corrupt-image",
			msg: "the photo is truncated or does not decode"}
	case errors.Is(err, imageproxy.ErrBusy), errors.Is(err, imageproxy.ErrTimeout):
		w.Header().Set("Retry-After", strconv.Itoa(int(imageproxy.RetryAfter.Seconds())))
		return &requestError{status: http.StatusServiceUnavailable, code: "busy",
			msg: "photo processing is busy; retry shortly"}
	}
	return err
}

func photoTooLarge(max int64) error {
	return &requestError{status: http.StatusRequestEntityTooLarge, code: "photo-too-large",
		msg: fmt.Sprintf("the photo exceeds %d bytes", max)}
}

func photoLimit(max int) error {
	return &requestError{status: http.StatusConflict, code: "photo-limit",
		msg: fmt.Sprintf("at most %d photos; delete one first", max)}
}

// readPhoto reads the upload: the first file part of a multipart/form-data
// body (or its part named "photo"), or the raw body (any image/* type,
// application/octet-stream or none). The format is sniffed later, never
// taken from the declared type.
func (s *Server) readPhoto(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	max := s.photos.MaxBytes
	mt := ""
	if ct := r.Header.Get("Content-Type"); ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, &requestError{status: http.StatusUnsupportedMediaType, code: "unsupported-media-type",
				msg: "malformed Content-Type"}
		}
	}
	limit := max
	if mt == "multipart/form-data" {
		limit += multipartSlack
	}
	if r.ContentLength > limit {
		return nil, photoTooLarge(max)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	r.Body = body
	var src io.Reader
	switch {
	case mt == "multipart/form-data":
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, badRequest("multipart body: %v", err)
		}
		for src == nil {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil, badRequest("the multipart body has no file part (send the photo in a part named \"photo\")")
			}
			if err != nil {
				return nil, bodyError(err, max)
			}
			if part.FormName() == "photo" || part.FileName() != "" {
				src = part
				break
			}
			if _, err := io.Copy(io.Discard, part); err != nil {
				return nil, bodyError(err, max)
			}
		}
	case mt == "" || mt == "application/octet-stream" || strings.HasPrefix(mt, "image/"):
		src = body
	default:
		return nil, &requestError{status: http.StatusUnsupportedMediaType, code: "unsupported-media-type",
			msg: "send the photo as the raw body (image/*) or as multipart/form-data"}
	}
	data, err := io.ReadAll(io.LimitReader(src, max+1))
	if err != nil {
		return nil, bodyError(err, max)
	}
	if int64(len(data)) > max {
		return nil, photoTooLarge(max)
	}
	if len(data) == 0 {
		return nil, badRequest("the photo is empty")
	}
	return data, nil
}

func bodyError(err error, max int64) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return photoTooLarge(max)
	}
	return badRequest("reading the photo: %v", err)
}

type photoJSON struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	ContentType string   `json:"content_type"`
	Width       int      `json:"width"`
	Height      int      `json:"height"`
	Bytes       int      `json:"bytes"`
	Photos      []string `json:"photos"`
}

// uploadPhoto is POST /api/users/me/photos: limits from the header (before
// any decoding) and the user's count, then one normalisation, the file,
// and the store's atomic count check last (the file goes if it refuses).
func (s *Server) uploadPhoto(w http.ResponseWriter, r *http.Request, me int64) error {
	select {
	case s.uploads <- struct{}{}:
		s.metrics.UploadsInFlight.Inc()
		defer func() {
			s.metrics.UploadsInFlight.Dec()
			<-s.uploads
		}()
	default:
		w.Header().Set("Retry-After", strconv.Itoa(int(imageproxy.RetryAfter.Seconds())))
		return &requestError{status: http.StatusServiceUnavailable, code: "busy",
			msg: "too many photo uploads in progress; retry shortly"}
	}
	data, err := s.readPhoto(w, r)
	if err != nil {
		return err
	}
	proc := s.photos.Processor
	if _, err := proc.Check(data); err != nil {
		return photoRequestError(w, err)
	}
	p, err := s.store.GetProfile(r.Context(), me)
	if err != nil {
		return fmt.Errorf("upload photo for %d: %w", me, err)
	}
	if len(p.Uploads) >= s.photos.MaxPhotos {
		return photoLimit(s.photos.MaxPhotos)
	}
	res, err := proc.Normalize(r.Context(), data, s.photos.MaxSide)
	if err != nil {
		if e := photoRequestError(w, err); e != err {
			return e
		}
		return fmt.Errorf("upload photo for %d: %w", me, err)
	}
	ext := "jpg"
	if res.Format == imageproxy.FormatPNG {
		ext = "png"
	}
	name, err := NewPhotoName(ext)
	if err != nil {
		return fmt.Errorf("upload photo for %d: %w", me, err)
	}
	if err := s.photos.Storage.Put(r.Context(), me, name, res.Body); err != nil {
		if diskFull(err) {
			s.log.Error("photo storage full: uploads refused", "user", me, "err", err)
			w.Header().Set("Retry-After", strconv.Itoa(int(diskFullRetryAfter.Seconds())))
			return &requestError{status: http.StatusInsufficientStorage, code: "storage-full",
				msg: "photo storage is full; retry later"}
		}
		return fmt.Errorf("upload photo for %d: %w", me, err)
	}
	p, err = s.store.AddPhoto(r.Context(), me, name, s.photos.MaxPhotos)
	if err != nil {
		if derr := s.photos.Storage.Delete(context.WithoutCancel(r.Context()), me, name); derr != nil {
			s.log.Error("photo refused by the store left its file", "user", me, "photo", name, "err", derr)
		}
		if errors.Is(err, store.ErrConflict) {
			return photoLimit(s.photos.MaxPhotos)
		}
		return fmt.Errorf("upload photo for %d: %w", me, err)
	}
	privateNoStore(w)
	path := PhotoPath(me, name)
	w.Header().Set("Location", path)
	setPurge(w, profileTags(me)...)
	return writeJSON(w, http.StatusCreated, photoJSON{ID: name, URL: path, ContentType: photoContentType(name),
		Width: res.Width, Height: res.Height, Bytes: len(res.Body), Photos: photoList(p)})
}

// deletePhoto is DELETE /api/users/me/photos/{photo}: the file goes first
// (a photo the user deleted must stop being served even if the store then
// fails), then the store entry; every edge purges the photo's variants and
// the profile. Files live under the owner's id, so the path proves
// ownership without a (possibly lagging replica) profile read.
func (s *Server) deletePhoto(w http.ResponseWriter, r *http.Request, me int64) error {
	name := r.PathValue("photo")
	if !ValidPhotoName(name) {
		return fmt.Errorf("photo %q: %w", name, store.ErrNotFound)
	}
	had := true
	f, _, err := s.photos.Storage.Open(r.Context(), me, name)
	switch {
	case errors.Is(err, ErrPhotoNotFound):
		had = false // a listing whose file is gone is still removed below
	case err != nil:
		return fmt.Errorf("delete photo of %d: %w", me, err)
	default:
		_ = f.Close()
		if err := s.photos.Storage.Delete(r.Context(), me, name); err != nil {
			return fmt.Errorf("delete photo of %d: %w", me, err)
		}
	}
	if _, err := s.store.RemovePhoto(r.Context(), me, name); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete photo of %d: %w", me, err)
		}
		if !had {
			return fmt.Errorf("photo %s of %d: %w", name, me, store.ErrNotFound)
		}
	}
	privateNoStore(w)
	setPurge(w, append([]string{PhotoTag(me, name)}, profileTags(me)...)...)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getPhoto is GET /api/users/{id}/photos/{photo}: the original, public
// (edges fetch it without credentials; the name is unguessable), immutable,
// with a strong ETag from the name, which never names other bytes.
func (s *Server) getPhoto(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	name := r.PathValue("photo")
	if err != nil || id <= 0 || !ValidPhotoName(name) {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no such photo")
		return
	}
	f, mod, err := s.photos.Storage.Open(r.Context(), id, name)
	if err != nil {
		if errors.Is(err, ErrPhotoNotFound) {
			writeProblem(w, r, http.StatusNotFound, "not-found", "no such photo")
			return
		}
		s.writeError(w, r, fmt.Errorf("get photo: %w", err))
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", photoContentType(name))
	h.Set("Cache-Control", PhotoCacheControl)
	h.Set("ETag", `"`+name+`"`)
	h.Set(contract.CacheTags, PhotoTag(id, name))
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, name, mod, f)
}
