import { sharedRender } from '../../src/http/metrics-endpoint';

describe('shared metrics renders', () => {
  let renders = 0;
  let fail = false;
  const render = async () => {
    renders += 1;
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (fail) throw new Error('collect failed');
    return `render ${renders}`;
  };
  beforeEach(() => {
    renders = 0;
    fail = false;
  });

  test('scrapes arriving while a render runs share it: a hundred at once cost one render', async () => {
    const read = sharedRender(render, 50);
    const bodies = await Promise.all(Array.from({ length: 100 }, () => read()));
    expect(new Set(bodies)).toEqual(new Set(['render 1']));
    expect(renders).toBe(1);
  });

  test('a finished render serves the scrapes of the next moment, then a new one is made', async () => {
    const read = sharedRender(render, 50);
    await read();
    expect(await read()).toBe('render 1');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await read()).toBe('render 2');
  });

  test('a failed render is not reused: the next scrape renders again', async () => {
    const read = sharedRender(render, 1000);
    fail = true;
    await expect(read()).rejects.toThrow('collect failed');
    fail = false;
    expect(await read()).toBe('render 2');
  });
});
