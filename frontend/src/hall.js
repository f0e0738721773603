// Placeholder until the hall pages land.
export const routes = [];
