// Svelte 5 defaults (runes); the file keeps vite-plugin-svelte from looking further.
export default {}
