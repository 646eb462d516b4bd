/** openapi.yaml's ModelName rule. */
export const MODEL_NAME_PATTERN = /^[0-9A-Za-z](?:[0-9A-Za-z_-]*[0-9A-Za-z])?$/;
export const MODEL_NAME_MAX = 255;

export function isValidModelName(name: string): boolean {
  return name.length <= MODEL_NAME_MAX && MODEL_NAME_PATTERN.test(name);
}

/** Why a name is refused, or null when it fits. */
export function modelNameProblem(name: string): string | null {
  if (name === '') {
    return 'A model needs a name.';
  }
  if (name.length > MODEL_NAME_MAX) {
    return `A model name has at most ${MODEL_NAME_MAX} characters; this one has ${name.length}.`;
  }
  if (!MODEL_NAME_PATTERN.test(name)) {
    return (
      'A model name holds letters, digits, "-" and "_", and starts and ends with a letter ' +
      'or digit.'
    );
  }
  return null;
}

/**
 * A model name made from a folder path: its last part, or the one above it
 * when the last is a TF Serving version folder ("simple/1" gives "simple"),
 * with every other character turned into "-" and the ends trimmed.
 */
export function modelNameFromPath(path: string): string {
  const parts = path.split('/').filter(part => part !== '');
  let folder = parts.length > 0 ? parts[parts.length - 1] : '';
  if (/^\d+$/.test(folder) && parts.length > 1) {
    folder = parts[parts.length - 2];
  }
  const fitted = folder
    .replace(/[^0-9A-Za-z_-]+/g, '-')
    .replace(/^[_-]+/, '')
    .slice(0, MODEL_NAME_MAX)
    .replace(/[_-]+$/, '');
  return fitted === '' ? 'model' : fitted;
}
