package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/spark-edge/spark/origin/store"
)

// deviceKey identifies a registered token.
type deviceKey struct {
	platform store.Platform
	token    string
}

// PutDevice implements store.DeviceStore.
func (s *Store) PutDevice(ctx context.Context, user int64, d store.Device) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[user]; !ok {
		return false, fmt.Errorf("memory: put device of %d: %w", user, store.ErrNotFound)
	}
	d.UserID = user
	d.UpdatedAt = s.tick()
	k := deviceKey{d.Platform, d.Token}
	old, existed := s.devices[k]
	if existed {
		s.removeDevice(k, old.UserID)
	}
	s.devices[k] = &d
	if s.userDevices[user] == nil {
		s.userDevices[user] = make(map[deviceKey]struct{})
	}
	s.userDevices[user][k] = struct{}{}
	// Keep the user's MaxDevicesPerUser most recently updated.
	mine := s.devicesOf(user)
	for _, old := range mine[min(len(mine), store.MaxDevicesPerUser):] {
		s.removeDevice(deviceKey{old.Platform, old.Token}, user)
	}
	return !existed, nil
}

// removeDevice forgets k, held by user (caller holds mu).
func (s *Store) removeDevice(k deviceKey, user int64) {
	delete(s.devices, k)
	delete(s.userDevices[user], k)
	if len(s.userDevices[user]) == 0 {
		delete(s.userDevices, user)
	}
}

// devicesOf returns user's devices, newest UpdatedAt first (caller holds mu).
func (s *Store) devicesOf(user int64) []store.Device {
	var out []store.Device
	for k := range s.userDevices[user] {
		out = append(out, *s.devices[k])
	}
	slices.SortFunc(out, func(a, b store.Device) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	return out
}

// DeleteDevice implements store.DeviceStore.
func (s *Store) DeleteDevice(ctx context.Context, user int64, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for k := range s.userDevices[user] {
		if k.token == token {
			s.removeDevice(k, user)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("memory: delete device of %d: %w", user, store.ErrNotFound)
	}
	return nil
}

// Devices implements store.DeviceStore.
func (s *Store) Devices(ctx context.Context, user int64) ([]store.Device, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.devicesOf(user), nil
}

// DevicesOf implements store.DeviceStore.
func (s *Store) DevicesOf(ctx context.Context, users []int64) (map[int64][]store.Device, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[int64][]store.Device)
	for _, u := range users {
		if ds := s.devicesOf(u); len(ds) > 0 {
			out[u] = ds
		}
	}
	return out, nil
}

// RemoveDeadDevice implements store.DeviceStore.
func (s *Store) RemoveDeadDevice(ctx context.Context, platform store.Platform, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := deviceKey{platform, token}
	if d, ok := s.devices[k]; ok {
		s.removeDevice(k, d.UserID)
	}
	return nil
}

// ReadMark implements store.DeviceStore.
func (s *Store) ReadMark(ctx context.Context, user, convID int64) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.convs[convID]
	if !ok {
		return 0, nil
	}
	return c.lastRead[user], nil
}
