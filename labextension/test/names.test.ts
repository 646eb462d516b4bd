import { describe, expect, it } from 'vitest';

import { MODEL_NAME_MAX, isValidModelName, modelNameFromPath, modelNameProblem } from '../src/names';

describe('modelNameFromPath', () => {
  it.each([
    ['models/simple', 'simple'],
    ['simple/1', 'simple'], // a TF Serving version folder names its parent
    ['1', '1'],
    ['exports/my model.v2', 'my-model-v2'],
    ['__private_model__', 'private_model'],
    ['-', 'model'],
    ['', 'model'],
    ['données/modèle', 'mod-le']
  ])('makes %j into %j', (path, name) => {
    // Given a folder path, When it is made a name, Then it fits the rule
    expect(modelNameFromPath(path)).toBe(name);
    expect(isValidModelName(name)).toBe(true);
  });

  it('cuts a long folder name to the maximum and still ends with a letter or digit', () => {
    const name = modelNameFromPath(`${'a'.repeat(MODEL_NAME_MAX - 1)}_b`);
    expect(name.length).toBeLessThanOrEqual(MODEL_NAME_MAX);
    expect(isValidModelName(name)).toBe(true);
  });
});

describe('modelNameProblem', () => {
  it.each([
    ['', /needs a name/],
    ['-simple', /starts and ends with a letter or digit/],
    ['a b', /letters, digits/],
    ['x'.repeat(MODEL_NAME_MAX + 1), /at most 255 characters; this one has 256/]
  ])('refuses %j and says why', (name, why) => {
    expect(modelNameProblem(name)).toMatch(why);
  });

  it('accepts a name that fits', () => {
    expect(modelNameProblem('half_plus-two2')).toBeNull();
  });
});
