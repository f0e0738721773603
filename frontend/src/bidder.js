// Placeholder until the bidder pages land.
export const routes = [];
