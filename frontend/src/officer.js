// Placeholder until the officer pages land.
export const routes = [];
