package postgis

import "context"

// PurgeUserState drops the user's cached state everywhere, as a write by
// another origin would (tests use it to make loads race writes).
func (s *Store) PurgeUserState(ctx context.Context, id int64) {
	if s.shared != nil {
		s.shared.PurgeTags(ctx, userTag(id))
	}
}
