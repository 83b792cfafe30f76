import { db } from 'ponder:api';
import { anchorEvent } from 'ponder:schema';
import { Hono } from 'hono';
import { count } from 'ponder';

// GET /count: rows indexed so far, so the benchmark can check Ponder stored every event.
const app = new Hono();
app.get('/count', async (c) => {
  const [row] = await db.select({ n: count() }).from(anchorEvent);
  return c.json({ count: Number(row?.n ?? 0) });
});
export default app;
