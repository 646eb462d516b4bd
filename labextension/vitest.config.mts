import { readFileSync } from 'node:fs';

import { defineConfig, Plugin } from 'vitest/config';

/** Load .svg as its text, as JupyterLab's webpack config does for LabIcon. */
function svgAsText(): Plugin {
  return {
    name: 'svg-as-text',
    enforce: 'pre',
    load(id) {
      const file = id.split('?')[0];
      return file.endsWith('.svg')
        ? `export default ${JSON.stringify(readFileSync(file, 'utf8'))};`
        : null;
    }
  };
}

export default defineConfig({
  plugins: [svgAsText()],
  test: {
    environment: 'jsdom',
    include: ['test/**/*.test.{ts,tsx}'],
    setupFiles: ['test/setup.ts'],
    // JupyterLab's, Lumino's and the toolkit's packages ship ES modules without
    // "type": "module": let Vite transform them instead of Node loading them.
    server: { deps: { inline: [/@jupyterlab\//, /@lumino\//, /@jupyter\//, /@microsoft\//] } },
    css: false
  }
});
