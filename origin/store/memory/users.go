package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/spark-edge/spark/origin/store"
)

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, nu store.NewUser) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: create user: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextUser++
	id := s.nextUser
	u := &user{profile: store.Profile{
		ID: id, Name: nu.Profile.Name, Age: nu.Profile.Age, Gender: nu.Profile.Gender,
		Bio: nu.Profile.Bio, Photos: slices.Clone(nu.Profile.Photos), Active: nu.Profile.Active, Version: 1,
	}}
	if nu.Preferences != nil {
		p := *nu.Preferences
		p.Genders = slices.Clone(p.Genders)
		u.prefs = &p
	}
	s.users[id] = u
	if nu.Location != nil {
		s.setLocationLocked(u, *nu.Location)
	}
	return id, nil
}

// GetProfile implements store.Store.
func (s *Store) GetProfile(ctx context.Context, id int64) (store.Profile, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, err := s.get(id)
	if err != nil {
		return store.Profile{}, err
	}
	return cloneProfile(u.profile), nil
}

// UpdateProfile implements store.Store.
func (s *Store) UpdateProfile(ctx context.Context, id int64, p store.ProfileUpdate, ifVersion int64) (store.Profile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.get(id)
	if err != nil {
		return store.Profile{}, err
	}
	if ifVersion > 0 && u.profile.Version != ifVersion {
		return store.Profile{}, fmt.Errorf("memory: update profile %d: version %d, want %d: %w",
			id, u.profile.Version, ifVersion, store.ErrPreconditionFailed)
	}
	u.profile = store.Profile{ID: id, Name: p.Name, Age: p.Age, Gender: p.Gender, Bio: p.Bio,
		Photos: slices.Clone(p.Photos), Uploads: u.profile.Uploads, Active: p.Active, Version: u.profile.Version + 1}
	return cloneProfile(u.profile), nil
}

// AddPhoto implements store.Store.
func (s *Store) AddPhoto(ctx context.Context, id int64, name string, max int) (store.Profile, error) {
	return s.editUploads(ctx, "add photo", id, func(u *user) error {
		if slices.Contains(u.profile.Uploads, name) {
			return fmt.Errorf("memory: add photo %q to %d: already there: %w", name, id, store.ErrConflict)
		}
		if len(u.profile.Uploads) >= max {
			return fmt.Errorf("memory: add photo to %d: %d photos, limit %d: %w", id, len(u.profile.Uploads), max, store.ErrConflict)
		}
		// A fresh slice: earlier clones handed out never alias the new state.
		u.profile.Uploads = append(slices.Clip(u.profile.Uploads), name)
		return nil
	})
}

// RemovePhoto implements store.Store.
func (s *Store) RemovePhoto(ctx context.Context, id int64, name string) (store.Profile, error) {
	return s.editUploads(ctx, "remove photo", id, func(u *user) error {
		i := slices.Index(u.profile.Uploads, name)
		if i < 0 {
			return fmt.Errorf("memory: remove photo %q of %d: %w", name, id, store.ErrNotFound)
		}
		u.profile.Uploads = slices.Delete(slices.Clone(u.profile.Uploads), i, i+1)
		return nil
	})
}

// editUploads runs edit (op, for errors) on the uploads of user id under
// the write lock; when it succeeds the profile's version goes up and a copy
// of the profile is returned.
func (s *Store) editUploads(ctx context.Context, op string, id int64, edit func(u *user) error) (store.Profile, error) {
	if err := ctx.Err(); err != nil {
		return store.Profile{}, fmt.Errorf("memory: %s: %w", op, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.get(id)
	if err != nil {
		return store.Profile{}, err
	}
	if err := edit(u); err != nil {
		return store.Profile{}, err
	}
	u.profile.Version++
	return cloneProfile(u.profile), nil
}

// GetPreferences implements store.Store.
func (s *Store) GetPreferences(ctx context.Context, id int64) (store.Preferences, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, err := s.get(id)
	if err != nil {
		return store.Preferences{}, err
	}
	if u.prefs == nil {
		return store.DefaultPreferences(), nil
	}
	p := *u.prefs
	p.Genders = slices.Clone(p.Genders)
	return p, nil
}

// PutPreferences implements store.Store.
func (s *Store) PutPreferences(ctx context.Context, id int64, p store.Preferences) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.get(id)
	if err != nil {
		return err
	}
	p.Genders = slices.Clone(p.Genders)
	u.prefs = &p
	return nil
}
