import { Entity, Key, type Datastore } from '../../src/datastore';
import { runCli, tempApp } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';

const TYPO = `
import { defineMigration, AddFieldData } from 'datastore-migrate';
export default defineMigration({ operations: [new AddFieldData('Oder', 'currency', { default: 'USD' })] });
`;

describeEachFlavour('an operation over a kind with no entities (a typo)', (ctx) => {
  async function fresh(): Promise<{ store: Datastore; env: NodeJS.ProcessEnv }> {
    const projectId = uniqueProject('strict');
    const store = await ctx.connect({ projectId });
    await store.save(Array.from({ length: 20 }, (_, i) => Entity.from(Key.of('Order', i + 1), { total: i })));
    return { store, env: { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId } };
  }
  // The Firestore-mode emulator answers no metadata queries, so only the classic one can name the kind meant.
  const instead = ctx.flavour === 'classic' ? /did you mean Order\?/ : /this backend does not list kinds/;
  const named = /default:0001_currency: Set Oder\.currency.*: there is no Oder entity in namespace ""/;

  it('is named by plan, --dry-run, migrate and verify, and refused with exit 2 and nothing changed under --strict', async () => {
    const { store, env } = await fresh();
    const app = tempApp({ 'migrations/0001_currency.ts': TYPO });

    const plan = await runCli(['plan'], { cwd: app, env });
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(named);
    expect(plan.stdout).toMatch(instead);
    expect((await runCli(['plan', '--strict'], { cwd: app, env })).code).toBe(2);

    const dry = await runCli(['migrate', '--dry-run'], { cwd: app, env });
    expect(dry.code).toBe(0);
    expect(dry.stderr).toMatch(/Dry-running \(applying\) 1 migration/);
    expect(dry.stderr).toMatch(named);

    const refused = await runCli(['migrate', '--strict'], { cwd: app, env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(named);
    expect(JSON.parse((await runCli(['status', '--json'], { cwd: app, env })).stdout)).toEqual([expect.objectContaining({ state: 'pending' })]);

    const config = tempApp({ 'migrations/0001_currency.ts': TYPO, 'dsmigrate.config.json': JSON.stringify({ strict: true }) });
    expect((await runCli(['migrate'], { cwd: config, env })).code).toBe(2);

    const applied = await runCli(['migrate'], { cwd: app, env });
    expect(applied.code).toBe(0);
    expect(applied.stderr).toMatch(new RegExp(`warning: ${named.source}`));

    const verified = await runCli(['verify'], { cwd: app, env });
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(named);
    expect(verified.stderr).toMatch(/Verifying 1 migration/);
    expect((await runCli(['verify', '--strict'], { cwd: app, env })).code).toBe(2);
    for await (const order of store.query({ kind: 'Order' })) expect(order.has('currency')).toBe(false);
  });
});
