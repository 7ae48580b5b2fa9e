/*
 * bisectlab._kernels: compiled twins of the hottest numpy passes of a decision, bit for bit.
 *
 * Each function here does what a numpy function of bisectlab does (named beside it), with the
 * same floating-point operations in the same order: numpy's pairwise summation where numpy sums
 * a contiguous run (np.add.reduceat), a running sum where it accumulates (np.cumsum). So a hunt
 * is the same, test for test, with or without this module; the numpy code is the reference and
 * the fallback where no C compiler built it. Arrays come through the buffer protocol (no numpy
 * headers), C-contiguous, float64 ("d") or int64 ("q" or "l").
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* numpy's pairwise sum of n doubles (loops_utils.h.src): 8 running sums in blocks of up to 128,
 * halves beyond that, -0.0 as the start of a short run. */
static double pairwise_sum(const double *a, Py_ssize_t n)
{
    if (n < 8) {
        double res = -0.0;
        for (Py_ssize_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        Py_ssize_t i;
        for (i = 0; i < 8; i++)
            r[i] = a[i];
        for (i = 8; i < n - (n % 8); i += 8) {
            r[0] += a[i + 0]; r[1] += a[i + 1]; r[2] += a[i + 2]; r[3] += a[i + 3];
            r[4] += a[i + 4]; r[5] += a[i + 5]; r[6] += a[i + 6]; r[7] += a[i + 7];
        }
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* np.add.reduceat's sum of a[lo:hi] (hi > lo): the first element, plus the rest's pairwise sum */
static double run_sum(const double *a, int64_t lo, int64_t hi)
{
    return hi - lo > 1 ? a[lo] + pairwise_sum(a + lo + 1, hi - lo - 1) : a[lo];
}

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    const char *f = view->format;
    if (view->itemsize != 8 || !f || !(strcmp(f, what) == 0
            || (what[0] == 'q' && (strcmp(f, "l") == 0 || strcmp(f, "<q") == 0
                                   || strcmp(f, "<l") == 0))
            || (what[0] == 'd' && strcmp(f, "<d") == 0))) {
        PyErr_Format(PyExc_TypeError, "expected a contiguous %s array",
                     what[0] == 'd' ? "float64" : "int64");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Buffers of one call, released together. */
typedef struct {
    Py_buffer view[9];
    int taken;
} Views;

static void release(Views *v)
{
    for (int i = 0; i < v->taken; i++)
        PyBuffer_Release(&v->view[i]);
}

/* A call's arguments as buffers, a letter of ``kinds`` each: d a float64 array, D one written
 * to, q an int64 array, Q one written to; -1 (all released) if one does not fit or their number
 * is not that. */
static int take_args(PyObject *args, Views *v, const char *kinds)
{
    Py_ssize_t n = (Py_ssize_t)strlen(kinds);
    v->taken = 0;
    if (n > (Py_ssize_t)(sizeof v->view / sizeof v->view[0]) || !PyTuple_Check(args)
            || PyTuple_GET_SIZE(args) != n) {
        PyErr_Format(PyExc_TypeError, "expected %zd arrays", n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (get_buffer(PyTuple_GET_ITEM(args, i), &v->view[i], kinds[i] == 'D' || kinds[i] == 'Q',
                       kinds[i] == 'q' || kinds[i] == 'Q' ? "q" : "d") < 0) {
            release(v);
            return -1;
        }
        v->taken++;
    }
    return 0;
}

/* A call refused: its buffers released, ValueError(message) raised (unless one already is). */
static PyObject *refused(Views *v, const char *message)
{
    release(v);
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, message);
    return NULL;
}

/* A call's scratch of n doubles; NULL (its buffers released, MemoryError raised) if memory
 * runs out. */
static double *scratch(Views *v, Py_ssize_t n)
{
    double *terms = malloc(sizeof(double) * (size_t)n);
    if (!terms) {
        release(v);
        PyErr_NoMemory();
    }
    return terms;
}

/* The index arrays of a dag._SumPlan: its order, then the rest in the order _SumPlan.packed
 * lays them out. */
enum {
    ORDER, MARKS, PIECE_START, SEG_LO, SEG_HI, SEG_GROUP, MERGE_PIECE, PIECE_CHAIN, CHAIN_START,
    CHAIN_PIECE, ROOTED, FORK_NEXT, FORK_PIECE, FORK_CHAIN_START, FORK_CHAIN_PIECE,
    LEVEL_CHAINS, LEVEL_PARENTS, LEVEL_BOUNDS, PLAN_PARTS
};

typedef struct {
    const int64_t *part[PLAN_PARTS];
    Py_ssize_t len[PLAN_PARTS];
} Plan;

typedef struct {
    double *between, *prefix, *segments, *added, *base, *extra;
    Py_ssize_t len;  /* extra's length per row (its other arrays' follow from the plan) */
} Scratch;

#define ROW_GROUP 8                /* rows whose ancestor sums are taken side by side */
#define GROUPED_LAYOUT (1 << 20)  /* the most doubles the side-by-side layout may take */

/* What dag._SumPlan.row_sums adds to the layouts of g rows (n apart), in place, between the
 * gather of their weights and the running sums: each piece's step, from the prefix sums at the
 * marks. Row r's scratch values lie at r times each scratch array's length (Scratch.len). */
static inline void add_piece_steps(const Plan *pl, double *layout, const Scratch *s, Py_ssize_t n,
                            Py_ssize_t g)
{
    const int64_t *marks = pl->part[MARKS];
    Py_ssize_t nm = pl->len[MARKS], npieces = pl->len[PIECE_CHAIN], nchains = pl->len[CHAIN_START];
    Py_ssize_t nseg = pl->len[SEG_LO], ngroups = pl->len[SEG_GROUP], nrooted = pl->len[ROOTED];
    Py_ssize_t j, r;
    double *between = s->between, *prefix = s->prefix, *segments = s->segments;
    double *added = s->added, *base = s->base, *extra = s->extra;
    Py_ssize_t lb = nm, lp = nm + 1, ls = nseg, la = npieces + 1, lc = nchains, le = s->len;

    for (j = 0; j < nm; j++) {                                 /* np.add.reduceat at the marks */
        int64_t lo = marks[j], hi = j + 1 < nm ? marks[j + 1] : n;
        for (r = 0; r < g; r++)
            between[r * lb + j] = run_sum(layout + r * n, lo, hi);
    }
    for (r = 0; r < g; r++)                                    /* np.cumsum into prefix[1:] */
        prefix[r * lp] = 0.0;
    for (j = 0; j < nm; j++)
        for (r = 0; r < g; r++)
            prefix[r * lp + j + 1] = j ? prefix[r * lp + j] + between[r * lb + j] : between[r * lb];

    /* _piece_extras */
    memset(added, 0, (size_t)(g * la) * sizeof(double));
    if (nseg) {
        for (j = 0; j < nseg; j++) {
            int64_t hi = pl->part[SEG_HI][j], lo = pl->part[SEG_LO][j];
            for (r = 0; r < g; r++)
                segments[r * ls + j] = prefix[r * lp + hi] - prefix[r * lp + lo];
        }
        for (j = 0; j < ngroups; j++) {
            int64_t lo = pl->part[SEG_GROUP][j], hi = j + 1 < ngroups ? pl->part[SEG_GROUP][j + 1] : nseg;
            int64_t at = pl->part[MERGE_PIECE][j] + 1;
            for (r = 0; r < g; r++)
                added[r * la + at] = run_sum(segments + r * ls, lo, hi);
        }
    }
    for (j = 1; j <= npieces; j++)
        for (r = 0; r < g; r++)
            added[r * la + j] = added[r * la + j - 1] + added[r * la + j];
    memset(base, 0, (size_t)(g * lc) * sizeof(double));
    for (j = 0; j < nrooted; j++) {
        int64_t chain = pl->part[ROOTED][j], next = pl->part[FORK_NEXT][j];
        int64_t start = pl->part[FORK_CHAIN_START][j], piece = pl->part[FORK_PIECE][j] + 1;
        int64_t first = pl->part[FORK_CHAIN_PIECE][j];
        for (r = 0; r < g; r++)
            base[r * lc + chain] = prefix[r * lp + next] - prefix[r * lp + start]
                + added[r * la + piece] - added[r * la + first];
    }
    const int64_t *bounds = pl->part[LEVEL_BOUNDS];
    for (Py_ssize_t level = 0; level + 1 < pl->len[LEVEL_BOUNDS]; level++) {
        /* a level's chains take their parents' bases as the level began (numpy's gather) */
        for (j = bounds[level]; j < bounds[level + 1]; j++) {
            int64_t parent = pl->part[LEVEL_PARENTS][j];
            for (r = 0; r < g; r++)
                extra[r * le + j - bounds[level]] = base[r * lc + parent];
        }
        for (j = bounds[level]; j < bounds[level + 1]; j++) {
            int64_t chain = pl->part[LEVEL_CHAINS][j];
            for (r = 0; r < g; r++)
                base[r * lc + chain] += extra[r * le + j - bounds[level]];
        }
    }
    for (j = 0; j < nchains; j++) {
        int64_t start = pl->part[CHAIN_START][j], piece = pl->part[CHAIN_PIECE][j];
        for (r = 0; r < g; r++)
            base[r * lc + j] -= prefix[r * lp + start] + added[r * la + piece];
    }
    for (j = 0; j < npieces; j++) {
        int64_t chain = pl->part[PIECE_CHAIN][j];
        for (r = 0; r < g; r++)
            extra[r * le + j] = base[r * lc + chain] + added[r * la + j + 1];
    }
    for (j = npieces - 1; j > 0; j--)                          /* extra[1:] -= extra[:-1] */
        for (r = 0; r < g; r++)
            extra[r * le + j] -= extra[r * le + j - 1];
    for (j = 0; j < npieces; j++) {
        int64_t at = pl->part[PIECE_START][j];
        for (r = 0; r < g; r++)
            layout[r * n + at] += extra[r * le + j];
    }
}

/* The weights whose ancestor sums are taken: rows n apart (``w``), or a candidate's mass ``m``
 * and then, row by row, its mass times the row of ``table`` (``count`` classes wide) at its
 * class (``classes``), formed as each is read. */
typedef struct {
    const double *w, *m, *table;
    const int64_t *classes;
    Py_ssize_t count;
} Source;

/* Row ``r`` of the source's weights, at commit ``c`` (n commits). */
static inline double weight(const Source *src, Py_ssize_t r, int64_t c, Py_ssize_t n)
{
    if (!src->table)
        return src->w[r * n + c];
    return r ? src->m[c] * src->table[(r - 1) * src->count + src->classes[c]] : src->m[c];
}

/* dag._SumPlan.row_sums for g rows at once, rows ``first`` on of the source: the ancestor-or-self
 * sums of each into out (rows n apart). Each row gets its own operations in its own order; the
 * rows only share the loops, so that their running sums, a chain of dependent adds each,
 * overlap in the processor. ``layout``: g n doubles. */
static inline void ancestor_group(const Plan *pl, const Source *src, Py_ssize_t first, double *out,
                                  double *layout, const Scratch *s, Py_ssize_t n, Py_ssize_t g)
{
    const int64_t *order = pl->part[ORDER];
    Py_ssize_t i, r;

    for (i = 0; i < n; i++) {
        int64_t at = order[i];
        for (r = 0; r < g; r++)
            layout[r * n + i] = weight(src, first + r, at, n);
    }
    add_piece_steps(pl, layout, s, n, g);
    for (i = 1; i < n; i++)                                    /* np.cumsum, a row each */
        for (r = 0; r < g; r++)
            layout[r * n + i] = layout[r * n + i - 1] + layout[r * n + i];
    for (i = 0; i < n; i++) {
        int64_t at = order[i];
        for (r = 0; r < g; r++)
            out[r * n + at] = layout[r * n + i];
    }
}

/* The plan of a call's index arrays (order, then packed with its bounds), or -1 with
 * ValueError (``what``: the kernel's name) if they do not fit n commits. */
static int take_plan(Plan *pl, const Py_buffer *order, const Py_buffer *packed,
                     const Py_buffer *bounds, Py_ssize_t n, const char *what)
{
    const int64_t *at = bounds->buf;
    Py_ssize_t nb = bounds->len / 8, total = packed->len / 8;
    if (order->len / 8 != n || nb != PLAN_PARTS || at[0] != 0 || at[PLAN_PARTS - 1] != total) {
        PyErr_Format(PyExc_ValueError, "%s: the shapes do not fit the plan", what);
        return -1;
    }
    pl->part[ORDER] = order->buf;
    pl->len[ORDER] = n;
    for (int p = 1; p < PLAN_PARTS; p++) {
        if (at[p] < at[p - 1]) {
            PyErr_Format(PyExc_ValueError, "%s: bounds must not decrease", what);
            return -1;
        }
        pl->part[p] = (const int64_t *)packed->buf + at[p - 1];
        pl->len[p] = at[p] - at[p - 1];
    }
    return 0;
}

/* The ancestor sums of the source's k rows into out (k rows of n), GROUPED rows side by side
 * where their layouts fit in GROUPED_LAYOUT doubles; -1 (MemoryError) if memory runs out. */
static int ancestor_sums(const Plan *pl, const Source *src, double *out, Py_ssize_t k,
                         Py_ssize_t n)
{
    Py_ssize_t nm = pl->len[MARKS], np_ = pl->len[PIECE_CHAIN], nc = pl->len[CHAIN_START];
    Py_ssize_t widest = np_ > nc ? np_ : nc;
    Py_ssize_t group = n > 0 && n <= GROUPED_LAYOUT / ROW_GROUP ? ROW_GROUP : 1;
    Py_ssize_t rows = k < group ? (k > 0 ? k : 1) : group;
    double *block = malloc(sizeof(double) * (size_t)rows * (size_t)(n + nm + (nm + 1)
                                                                   + pl->len[SEG_LO] + (np_ + 1)
                                                                   + nc + widest + 1));
    if (!block) {
        PyErr_NoMemory();
        return -1;
    }
    Scratch s;
    double *layout = block;
    s.between = layout + rows * n;
    s.prefix = s.between + rows * nm;
    s.segments = s.prefix + rows * (nm + 1);
    s.added = s.segments + rows * pl->len[SEG_LO];
    s.base = s.added + rows * (np_ + 1);
    s.extra = s.base + rows * nc;
    s.len = widest;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < k; r += group) {
        Py_ssize_t g = k - r < group ? k - r : group;
        double *to = out + r * n;
        if (g == ROW_GROUP)  /* the same code, built for a constant count of rows as well */
            ancestor_group(pl, src, r, to, layout, &s, n, ROW_GROUP);
        else if (g == 1)
            ancestor_group(pl, src, r, to, layout, &s, n, 1);
        else
            ancestor_group(pl, src, r, to, layout, &s, n, g);
    }
    Py_END_ALLOW_THREADS
    free(block);
    return 0;
}

/* Whether b has ndim dimensions of lengths d0, d1, d2 (as many as it has). */
static int check_shape(Py_buffer *b, int ndim, Py_ssize_t d0, Py_ssize_t d1, Py_ssize_t d2)
{
    Py_ssize_t want[3] = {d0, d1, d2};
    if (b->ndim != ndim)
        return 0;
    for (int i = 0; i < ndim; i++)
        if (b->shape[i] != want[i])
            return 0;
    return 1;
}

/* The rest of an ancestor-sum kernel's call: the plan from its buffers ``at`` to ``at`` + 2
 * (order, packed, bounds), the sums of the source's k rows of n commits into out, the call's
 * buffers released; NULL with the error (``what``: the kernel's name) if the plan does not fit
 * or memory runs out. */
static PyObject *sums_by_plan(Views *v, int at, const Source *src, double *out, Py_ssize_t k,
                              Py_ssize_t n, const char *what)
{
    Plan pl;
    if (take_plan(&pl, &v->view[at], &v->view[at + 1], &v->view[at + 2], n, what) < 0
            || ancestor_sums(&pl, src, out, k, n) < 0)
        return refused(v, NULL);
    release(v);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ancestor_rows_doc,
"ancestor_rows(w, out, order, packed, bounds)\n\n"
"dag._SumPlan.row_sums of the (k, n) float64 matrix w into out, bit for bit: order is the plan's\n"
"layout order (int64), packed its other index arrays end to end, bounds where each starts.");

static PyObject *ancestor_rows(PyObject *self, PyObject *args)
{
    Views v;
    if (take_args(args, &v, "dDqqq") < 0)
        return NULL;
    Py_buffer *w = &v.view[0], *out = &v.view[1];
    if (w->ndim != 2 || !check_shape(out, 2, w->shape[0], w->shape[1], 0))
        return refused(&v, "ancestor_rows: the shapes do not fit the plan");
    Source src = {.w = w->buf};
    return sums_by_plan(&v, 2, &src, out->buf, w->shape[0], w->shape[1], "ancestor_rows");
}

PyDoc_STRVAR(ancestor_products_doc,
"ancestor_products(m, table, classes, out, order, packed, bounds)\n\n"
"dag.AncestorSums.product_sums into out (1 + t, n), bit for bit: the ancestor sums of the mass m\n"
"(n) and of m times each of the t rows of table (t, count) read at each commit's class (classes,\n"
"int64, each in [0, count)); order, packed and bounds as ancestor_rows takes them.");

static PyObject *ancestor_products(PyObject *self, PyObject *args)
{
    Views v;
    if (take_args(args, &v, "ddqDqqq") < 0)
        return NULL;
    Py_buffer *m = &v.view[0], *table = &v.view[1], *classes = &v.view[2], *out = &v.view[3];
    Py_ssize_t n = m->len / 8;
    Py_ssize_t t = table->ndim == 2 ? table->shape[0] : -1, count = t >= 0 ? table->shape[1] : 0;
    if (m->ndim != 1 || t < 0 || classes->len / 8 != n || !check_shape(out, 2, 1 + t, n, 0))
        return refused(&v, "ancestor_products: the shapes do not fit");
    const int64_t *cls = classes->buf;
    for (Py_ssize_t i = 0; i < n && t > 0; i++) {
        if (cls[i] < 0 || cls[i] >= count)
            return refused(&v, "ancestor_products: a class outside the table");
    }
    Source src = {.m = m->buf, .table = table->buf, .classes = cls, .count = count};
    return sums_by_plan(&v, 4, &src, out->buf, 1 + t, n, "ancestor_products");
}

/* np.max of m values x[0], x[step], ...: NaN wins. */
static double top_of(const double *x, Py_ssize_t m, Py_ssize_t step)
{
    double top = x[0];
    for (Py_ssize_t j = 1; j < m; j++) {
        double y = x[j * step];
        if (y > top || isnan(y))
            top = isnan(top) ? top : y;
    }
    return top;
}

/* numpy's sum of m values x[0], x[step], ...: pairwise along a contiguous run (``pairwise``,
 * step 1), else one after another, as numpy sums across an outer axis. */
static double sum_of(const double *x, Py_ssize_t m, Py_ssize_t step, int pairwise)
{
    if (pairwise)
        return pairwise_sum(x, m);
    double sum = x[0];
    for (Py_ssize_t j = 1; j < m; j++)
        sum += x[j * step];
    return sum;
}

/* posterior._logsumexp of m values x[0], x[stride], ... (each plus shift[j], if given): the
 * largest kept out of the sum, the rest's exponentials summed as numpy sums them (sum_of), with
 * the C library's exp, log and log1p. ``terms``: m doubles. */
static double log_sum_exp(const double *x, Py_ssize_t m, Py_ssize_t stride, const double *shift,
                          int pairwise, double *terms)
{
    double top, count = 0.0, rest;
    Py_ssize_t j;
    for (j = 0; j < m; j++)
        terms[j] = shift ? x[j * stride] + shift[j] : x[j * stride];
    top = top_of(terms, m, 1);
    for (j = 0; j < m; j++) {
        double v = terms[j];
        if (v == top) {
            count += 1.0;
            v = -INFINITY;
        }
        terms[j] = exp(v - top);
    }
    rest = sum_of(terms, m, 1, pairwise);
    if (rest != 0.0)
        rest = rest / count;
    return top == -INFINITY ? -INFINITY : log1p(rest) + log(count) + top;
}

PyDoc_STRVAR(lse_all_doc,
"lse_all(a, out)\n\n"
"posterior._logsumexp of every value of the contiguous array a (summed pairwise, as numpy sums\n"
"one buffer) into out (one value), with the C library's exp, log and log1p.");

static PyObject *lse_all(PyObject *self, PyObject *args)
{
    Views v;
    if (take_args(args, &v, "dD") < 0)
        return NULL;
    Py_ssize_t m = v.view[0].len / 8;
    if (m == 0 || v.view[1].len != 8)
        return refused(&v, "lse_all: nothing to sum, or not one value out");
    double *terms = scratch(&v, m);
    if (!terms)
        return NULL;
    const double *a = v.view[0].buf;
    double *out = v.view[1].buf;
    Py_BEGIN_ALLOW_THREADS
    *out = log_sum_exp(a, m, 1, NULL, 1, terms);
    Py_END_ALLOW_THREADS
    free(terms);
    release(&v);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(pair_likelihoods_doc,
"pair_likelihoods(on_p, on_f, on_f2, log_prior, joint, per_pair)\n\n"
"posterior._log_mass's joint (U, P, F) = on_p (U, P) + on_f (U, F) + on_f2 (U, F), NaN as -inf,\n"
"plus log_prior (P, F); and per_pair (U), its log-sum-exp over the rates.");

static PyObject *pair_likelihoods(PyObject *self, PyObject *args)
{
    Views v;
    if (take_args(args, &v, "ddddDD") < 0)
        return NULL;
    Py_buffer *on_p = &v.view[0], *on_f = &v.view[1], *on_f2 = &v.view[2], *prior = &v.view[3];
    Py_buffer *joint = &v.view[4], *per_pair = &v.view[5];
    Py_ssize_t U = on_p->ndim == 2 ? on_p->shape[0] : -1, P = on_p->ndim == 2 ? on_p->shape[1] : -1;
    Py_ssize_t F = on_f->ndim == 2 ? on_f->shape[1] : -1;
    if (U < 0 || F < 0 || !check_shape(on_f, 2, U, F, 0) || !check_shape(on_f2, 2, U, F, 0)
            || !check_shape(prior, 2, P, F, 0) || !check_shape(joint, 3, U, P, F)
            || !check_shape(per_pair, 1, U, 0, 0)) {
        return refused(&v, "pair_likelihoods: the shapes do not agree");
    }
    if (P * F == 0) {  /* numpy's maximum of nothing: a ValueError too */
        return refused(&v, "pair_likelihoods: no rates to sum over");
    }
    double *terms = scratch(&v, P * F);
    if (!terms)
        return NULL;
    const double *a = on_p->buf, *b = on_f->buf, *c = on_f2->buf, *lp = prior->buf;
    double *out = joint->buf, *pp = per_pair->buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t u = 0; u < U; u++) {
        double *row = out + u * P * F;
        for (Py_ssize_t p = 0; p < P; p++)
            for (Py_ssize_t f = 0; f < F; f++) {
                double x = a[u * P + p] + b[u * F + f];
                x += c[u * F + f];
                if (isnan(x))
                    x = -INFINITY;
                row[p * F + f] = x + lp[p * F + f];
            }
        pp[u] = log_sum_exp(row, P * F, 1, NULL, 1, terms);
    }
    Py_END_ALLOW_THREADS
    free(terms);
    release(&v);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(rate_posteriors_doc,
"rate_posteriors(joint, per_pair, log_weight, rates, conditional)\n\n"
"posterior._compute_posterior's rates (P, F): the log-sum-exp over pairs of joint (U, P, F) plus\n"
"log_weight (U); and conditional (U, P, F): exp(joint - per_pair), 0 for an impossible pair.");

static PyObject *rate_posteriors(PyObject *self, PyObject *args)
{
    Views v;
    if (take_args(args, &v, "dddDD") < 0)
        return NULL;
    Py_buffer *joint = &v.view[0], *per_pair = &v.view[1], *weight = &v.view[2];
    Py_buffer *rates = &v.view[3], *cond = &v.view[4];
    Py_ssize_t U = joint->ndim == 3 ? joint->shape[0] : -1;
    Py_ssize_t P = U >= 0 ? joint->shape[1] : 0, F = U >= 0 ? joint->shape[2] : 0;
    if (U < 1 || !check_shape(per_pair, 1, U, 0, 0) || !check_shape(weight, 1, U, 0, 0)
            || !check_shape(rates, 2, P, F, 0) || !check_shape(cond, 3, U, P, F)) {
        return refused(&v, "rate_posteriors: the shapes do not agree");
    }
    double *terms = scratch(&v, U);
    if (!terms)
        return NULL;
    const double *j = joint->buf, *pp = per_pair->buf, *lw = weight->buf;
    double *r = rates->buf, *c = cond->buf;
    Py_ssize_t cells = P * F;
    Py_BEGIN_ALLOW_THREADS
    /* numpy sums across the pairs one after another, unless each pair holds one cell: then the
     * pairs are its contiguous axis, summed pairwise */
    for (Py_ssize_t cell = 0; cell < cells; cell++)
        r[cell] = log_sum_exp(j + cell, U, cells, lw, cells == 1, terms);
    for (Py_ssize_t u = 0; u < U; u++) {
        int possible = isfinite(pp[u]);
        for (Py_ssize_t cell = 0; cell < cells; cell++)
            c[u * cells + cell] = possible ? exp(j[u * cells + cell] - pp[u]) : 0.0;
    }
    Py_END_ALLOW_THREADS
    free(terms);
    release(&v);
    Py_RETURN_NONE;
}

/* np.clip(x, 0.0, 1.0) of one value: NaN and -0.0 kept, as numpy's clip keeps them. */
static inline double clip01(double x)
{
    x = x < 0.0 ? 0.0 : x;
    return x > 1.0 ? 1.0 : x;
}

/* posterior.entropy_bits's bits of one probability: p clipped to [0, 1] already, lq = log(p) and
 * l1q = log1p(-p) worked out by numpy (its own exp and log, whatever the CPU), 0 log 0 taken as 0. */
static inline double entropy_of(double p, double lq, double l1q, double ln2)
{
    double bits = lq * p, other = l1q * (1 - p);
    bits = p == 0 ? 0.0 : bits;          /* selects, not branches: the loops vectorise */
    other = 1 - p == 0 ? 0.0 : other;
    return -(bits + other) / ln2;
}

/* np.maximum(h - cond, 0.0): NaN kept, and +0.0 at -0.0 as numpy's SIMD loops give it (x86,
 * aarch64) */
static inline double information_of(double h, double cond)
{
    double info = h - cond;
    return info <= 0.0 ? 0.0 : info;
}

PyDoc_STRVAR(entropy_doc,
"entropy(p, lq, l1q, ln2, out)\n\n"
"posterior.entropy_bits's binary entropy in bits of p (clipped to [0, 1]), given numpy's\n"
"lq = log(p) and l1q = log1p(-p): -(p lq + (1 - p) l1q) / ln2, each term 0 where its factor\n"
"is 0. ln2: one value, numpy's log(2).");

static PyObject *entropy(PyObject *self, PyObject *args)
{
    Views v;
    if (take_args(args, &v, "ddddD") < 0)
        return NULL;
    Py_ssize_t n = v.view[0].len / 8;
    if (v.view[1].len / 8 != n || v.view[2].len / 8 != n || v.view[3].len != 8
            || v.view[4].len / 8 != n) {
        return refused(&v, "entropy: the sizes do not agree");
    }
    const double *p = v.view[0].buf, *lq = v.view[1].buf, *l1q = v.view[2].buf;
    double ln2 = *(const double *)v.view[3].buf, *out = v.view[4].buf;
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = entropy_of(p[i], lq[i], l1q[i], ln2);
    release(&v);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(entropy_exact_doc,
"entropy_exact(q, ln2, out)\n\n"
"posterior.entropy_bits of q, clipped to [0, 1], into out, with the C library's log and log1p\n"
"(for a CPU where numpy's are the same): entropy's pass with the logarithms taken in it.");

static PyObject *entropy_exact(PyObject *self, PyObject *args)
{
    Views v;
    if (take_args(args, &v, "ddD") < 0)
        return NULL;
    Py_ssize_t n = v.view[0].len / 8;
    if (v.view[1].len != 8 || v.view[2].len / 8 != n)
        return refused(&v, "entropy_exact: the sizes do not agree");
    const double *q = v.view[0].buf;
    double ln2 = *(const double *)v.view[1].buf, *out = v.view[2].buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        double p = clip01(q[i]);
        out[i] = entropy_of(p, log(p), log1p(-p), ln2);
    }
    release(&v);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(first_best_doc,
"first_best(values)\n\n"
"strategies.bayes.first_best of a float64 vector: the first index within 1e-9 relative of the\n"
"largest value, or numpy's argmax where the largest is not finite (NaN first, as numpy's max).");

static PyObject *first_best(PyObject *self, PyObject *args)
{
    Views v;
    if (take_args(args, &v, "d") < 0)
        return NULL;
    Py_ssize_t n = v.view[0].len / 8, i, best = 0;
    if (n == 0)
        return refused(&v, "first_best: no values");
    const double *x = v.view[0].buf;
    double top = x[0];
    for (i = 1; i < n && !isnan(top); i++) {   /* np.argmax: the first largest, a NaN first */
        if (x[i] > top || isnan(x[i])) {
            top = x[i];
            best = i;
        }
    }
    if (isfinite(top)) {
        double floor = top - 1e-9 * fabs(top);
        for (best = 0; !(x[best] >= floor); best++)
            ;
    }
    release(&v);
    return PyLong_FromSsize_t(best);
}

PyDoc_STRVAR(lab_scores_doc,
"lab_scores(p_pass, lq, l1q, cond, u, install, per_b, consts, out)\n\n"
"BayesStrategy's scores (L, N) from the pass probabilities p_pass (L, N), clipped, with numpy's\n"
"lq = log(p_pass) and l1q = log1p(-p_pass), and the expected entropy given the culprit cond\n"
"(L, N): the information max(H(p_pass) - cond, 0) over 1 + weight (1 - p_pass); then, unless\n"
"install is empty, over the expected lab minutes install + boot (u boots_if_bad + (1 - u) b) +\n"
"swap u fail_if_bad. u, install: (N); per_b (L, 3): b, boots_if_bad, fail_if_bad; consts:\n"
"ln2, weight, boot, swap.");

static PyObject *lab_scores(PyObject *self, PyObject *args)
{
    Views v;
    if (take_args(args, &v, "ddddddddD") < 0)
        return NULL;
    Py_buffer *pp = &v.view[0], *install = &v.view[5];
    Py_ssize_t L = pp->ndim == 2 ? pp->shape[0] : -1, N = pp->ndim == 2 ? pp->shape[1] : -1;
    int priced = install->len > 0;
    if (L < 0 || !check_shape(&v.view[1], 2, L, N, 0) || !check_shape(&v.view[2], 2, L, N, 0)
            || !check_shape(&v.view[3], 2, L, N, 0) || !check_shape(&v.view[4], 1, N, 0, 0)
            || (priced && !check_shape(install, 1, N, 0, 0))
            || !check_shape(&v.view[6], 2, L, 3, 0) || v.view[7].len != 4 * 8
            || !check_shape(&v.view[8], 2, L, N, 0)) {
        return refused(&v, "lab_scores: the shapes do not agree");
    }
    const double *p = pp->buf, *lq = v.view[1].buf, *l1q = v.view[2].buf, *cond = v.view[3].buf;
    const double *u = v.view[4].buf, *ins = install->buf, *per_b = v.view[6].buf;
    const double *c = v.view[7].buf;
    double *out = v.view[8].buf;
    double ln2 = c[0], weight = c[1], boot = c[2], swap = c[3];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t l = 0; l < L; l++) {
        double b = per_b[3 * l], boots_if_bad = per_b[3 * l + 1], fail_if_bad = per_b[3 * l + 2];
        const double *pl = p + l * N, *lql = lq + l * N, *l1ql = l1q + l * N, *cl = cond + l * N;
        double *ol = out + l * N;
        if (priced) {
            for (Py_ssize_t i = 0; i < N; i++)
                ol[i] = information_of(entropy_of(pl[i], lql[i], l1ql[i], ln2), cl[i])
                        / (1 + weight * (1 - pl[i]))
                        / ((ins[i] + boot * (u[i] * boots_if_bad + (1 - u[i]) * b))
                           + swap * u[i] * fail_if_bad);
        } else {
            for (Py_ssize_t i = 0; i < N; i++)
                ol[i] = information_of(entropy_of(pl[i], lql[i], l1ql[i], ln2), cl[i])
                        / (1 + weight * (1 - pl[i]));
        }
    }
    Py_END_ALLOW_THREADS
    release(&v);
    Py_RETURN_NONE;
}

/* A (boots, failures) pair of Evidence, ordered as np.lexsort((fails, boots)) orders them. */
typedef struct {
    int64_t boots, fails, split;
} PairKey;

static int pair_order(const void *x, const void *y)
{
    const PairKey *a = x, *b = y;
    if (a->boots != b->boots)
        return a->boots < b->boots ? -1 : 1;
    if (a->fails != b->fails)
        return a->fails < b->fails ? -1 : 1;
    return a->split < b->split ? -1 : a->split > b->split;
}

PyDoc_STRVAR(split_pairs_doc,
"split_pairs(pair, ancestors, pair_boots, pair_fails, test, out_pair, out_boots, out_fails)\n\n"
"posterior.Evidence.add's new pairs: each candidate's pair (N) split by whether it is among the\n"
"ancestors (indices) of a test of test = (boots, failures) boots and failures, which the bad\n"
"side adds; the distinct pairs sorted by boots, then failures, into out_boots and out_fails\n"
"(room for 2 U), each candidate's rank among them into out_pair (N). Returns how many.");

static PyObject *split_pairs(PyObject *self, PyObject *args)
{
    Views v;
    if (take_args(args, &v, "qqqqqQQQ") < 0)
        return NULL;
    Py_ssize_t n = v.view[0].len / 8, na = v.view[1].len / 8, u = v.view[2].len / 8;
    if (v.view[3].len / 8 != u || v.view[4].len != 2 * 8 || v.view[5].len / 8 != n
            || v.view[6].len / 8 != 2 * u || v.view[7].len / 8 != 2 * u)
        return refused(&v, "split_pairs: the sizes do not agree");
    const int64_t *pair = v.view[0].buf, *anc = v.view[1].buf, *pb = v.view[2].buf;
    const int64_t *pf = v.view[3].buf, *test = v.view[4].buf;
    int64_t *out = v.view[5].buf, *ob = v.view[6].buf, *of = v.view[7].buf;
    for (Py_ssize_t c = 0; c < n; c++) {
        if (pair[c] < 0 || pair[c] >= u)
            return refused(&v, "split_pairs: a pair outside the pairs");
    }
    for (Py_ssize_t i = 0; i < na; i++) {
        if (anc[i] < 0 || anc[i] >= n)
            return refused(&v, "split_pairs: an ancestor outside the candidates");
    }
    int64_t *split = malloc(sizeof(int64_t) * (size_t)(n + 4 * u + 1));
    PairKey *keys = malloc(sizeof(PairKey) * (size_t)(2 * u + 1));
    if (!split || !keys) {
        free(split);
        free(keys);
        release(&v);
        return PyErr_NoMemory();
    }
    int64_t *used = split + n, *rank = used + 2 * u;
    Py_ssize_t count = 0, distinct = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t c = 0; c < n; c++)                  /* 2 u + 1: pair u, and the commit is bad */
        split[c] = 2 * pair[c];
    for (Py_ssize_t i = 0; i < na; i++)
        split[anc[i]] = 2 * pair[anc[i]] + 1;
    memset(used, 0, sizeof(int64_t) * (size_t)(2 * u));
    for (Py_ssize_t c = 0; c < n; c++)
        used[split[c]] = 1;
    for (Py_ssize_t s = 0; s < 2 * u; s++) {
        if (used[s]) {
            int64_t bad = s % 2;
            keys[count].boots = pb[s / 2] + bad * test[0];
            keys[count].fails = pf[s / 2] + bad * test[1];
            keys[count].split = s;
            count++;
        }
    }
    qsort(keys, (size_t)count, sizeof(PairKey), pair_order);
    for (Py_ssize_t j = 0; j < count; j++) {
        if (j == 0 || keys[j].boots != keys[j - 1].boots || keys[j].fails != keys[j - 1].fails) {
            ob[distinct] = keys[j].boots;
            of[distinct] = keys[j].fails;
            distinct++;
        }
        rank[keys[j].split] = distinct - 1;
    }
    for (Py_ssize_t c = 0; c < n; c++)
        out[c] = rank[split[c]];
    Py_END_ALLOW_THREADS
    free(split);
    free(keys);
    release(&v);
    return PyLong_FromSsize_t(distinct);
}

/* Whether column j of a (k, N) matrix is column j - 1's, bit for bit. */
static inline int same_column(const double *a, Py_ssize_t k, Py_ssize_t n, Py_ssize_t j)
{
    for (Py_ssize_t r = 0; r < k; r++) {
        if (memcmp(a + r * n + j, a + r * n + j - 1, sizeof(double)) != 0)
            return 0;
    }
    return 1;
}

PyDoc_STRVAR(sum_scores_doc,
"sum_scores(sums, good, install, per_b, consts, out)\n\n"
"posterior.sums_per_cost with the C library's log and log1p (for a CPU where numpy's are the\n"
"same): BayesStrategy's scores (L, N) from each candidate's ancestor sums (k, N): u, the L\n"
"sums of P(pass | bad) and the L of its entropy, then, with k = 1 + 4 L (false positives),\n"
"those of P(pass | good) and its entropy, and per b the totals good (2, L) of the last two.\n"
"A candidate whose column and install price are its left neighbour's, bit for bit, takes\n"
"its scores. install (N), empty if unpriced; per_b (L, 3); consts: ln2, weight, boot, swap.");

static PyObject *sum_scores(PyObject *self, PyObject *args)
{
    Views v;
    if (take_args(args, &v, "dddddD") < 0)
        return NULL;
    Py_buffer *sums = &v.view[0], *install = &v.view[2], *out = &v.view[5];
    Py_ssize_t k = sums->ndim == 2 ? sums->shape[0] : -1, N = sums->ndim == 2 ? sums->shape[1] : -1;
    Py_ssize_t L = out->ndim == 2 ? out->shape[0] : -1;
    int priced = install->len > 0, no_fp = k == 1 + 2 * L;
    if (k < 0 || L < 1 || (k != 1 + 2 * L && k != 1 + 4 * L)
            || !check_shape(&v.view[1], 2, 2, L, 0) || (priced && !check_shape(install, 1, N, 0, 0))
            || !check_shape(&v.view[3], 2, L, 3, 0) || v.view[4].len != 4 * 8
            || !check_shape(out, 2, L, N, 0)) {
        return refused(&v, "sum_scores: the shapes do not agree");
    }
    const double *a = sums->buf, *good = v.view[1].buf, *ins = install->buf;
    const double *per_b = v.view[3].buf, *c = v.view[4].buf;
    double *o = out->buf;
    double ln2 = c[0], weight = c[1], boot = c[2], swap = c[3];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < N; j++) {
        if (j > 0 && same_column(a, k, N, j)
                && (!priced || memcmp(ins + j, ins + j - 1, sizeof(double)) == 0)) {
            for (Py_ssize_t l = 0; l < L; l++)
                o[l * N + j] = o[l * N + j - 1];
            continue;
        }
        double u = clip01(a[j]);
        for (Py_ssize_t l = 0; l < L; l++) {
            double bad_in = a[(1 + l) * N + j], h_bad_in = a[(1 + L + l) * N + j];
            double good_in = no_fp ? a[j] : a[(1 + 2 * L + l) * N + j];
            double h_good_in = no_fp ? 0.0 : a[(1 + 3 * L + l) * N + j];
            double p = clip01(bad_in + good[l] - good_in);
            double cond = h_bad_in + good[L + l] - h_good_in;
            double score = information_of(entropy_of(p, log(p), log1p(-p), ln2), cond)
                           / (1 + weight * (1 - p));
            if (priced) {
                double b = per_b[3 * l], boots_if_bad = per_b[3 * l + 1];
                double fail_if_bad = per_b[3 * l + 2];
                score = score / ((ins[j] + boot * (u * boots_if_bad + (1 - u) * b))
                                 + swap * u * fail_if_bad);
            }
            o[l * N + j] = score;
        }
    }
    Py_END_ALLOW_THREADS
    release(&v);
    Py_RETURN_NONE;
}

/* The lines of a log-sum-exp (posterior._logsumexp): n lines of m values each, value j of line i
 * at i * line + j * step of a contiguous array; sums pairwise (a contiguous run, step 1) or one
 * value after another (across an outer axis), as numpy does. -1 (an exception set) unless every
 * index is inside the ``size`` values. */
typedef struct {
    Py_ssize_t n, m, step, line;
    int pairwise;
} Lines;

static int take_lines(Py_buffer *dims, Py_ssize_t size, Lines *ln)
{
    const int64_t *d = dims->buf;
    if (dims->len != 5 * 8) {
        PyErr_SetString(PyExc_ValueError, "expected 5 line dimensions");
        return -1;
    }
    ln->n = d[0]; ln->m = d[1]; ln->step = d[2]; ln->line = d[3]; ln->pairwise = d[4] != 0;
    if (size < 1 || ln->n < 1 || ln->m < 1 || ln->step < 1 || ln->line < 0
            || (ln->pairwise && ln->step != 1)
            || (ln->n - 1) > (size - 1) / (ln->line ? ln->line : 1)   /* no overflow below */
            || (ln->m - 1) > (size - 1) / ln->step
            || (ln->n - 1) * ln->line + (ln->m - 1) * ln->step >= size) {
        PyErr_SetString(PyExc_ValueError, "the lines do not fit the array");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(lse_shift_doc,
"lse_shift(a, shifted, top, count, lines)\n\n"
"The first half of posterior._logsumexp over each line (lines: int64 n, m, step, line,\n"
"pairwise): its largest value top (NaN wins, as np.max), how many equal it, and shifted =\n"
"(-inf where a value equals top, else the value) - top, for numpy's exp.");

static PyObject *lse_shift(PyObject *self, PyObject *args)
{
    Views v;
    Lines ln;
    if (take_args(args, &v, "dDDDq") < 0)
        return NULL;
    Py_ssize_t size = v.view[0].len / 8;
    if (take_lines(&v.view[4], size, &ln) < 0 || v.view[1].len != v.view[0].len
            || v.view[2].len / 8 != ln.n || v.view[3].len / 8 != ln.n) {
        return refused(&v, "lse_shift: the sizes do not agree");
    }
    const double *a = v.view[0].buf;
    double *shifted = v.view[1].buf, *top = v.view[2].buf, *count = v.view[3].buf;
    for (Py_ssize_t i = 0; i < ln.n; i++) {
        const double *x = a + i * ln.line;
        double t = top_of(x, ln.m, ln.step), c = 0.0;
        for (Py_ssize_t j = 0; j < ln.m; j++) {
            double y = x[j * ln.step];
            if (y == t) {
                c += 1.0;
                y = -INFINITY;
            }
            shifted[i * ln.line + j * ln.step] = y - t;
        }
        top[i] = t;
        count[i] = c;
    }
    release(&v);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(lse_rest_doc,
"lse_rest(terms, count, rest, lines)\n\n"
"The middle of posterior._logsumexp over each line: the sum of its terms (numpy's exp of\n"
"lse_shift's), divided by count unless it is 0.");

static PyObject *lse_rest(PyObject *self, PyObject *args)
{
    Views v;
    Lines ln;
    if (take_args(args, &v, "ddDq") < 0)
        return NULL;
    if (take_lines(&v.view[3], v.view[0].len / 8, &ln) < 0 || v.view[1].len / 8 != ln.n
            || v.view[2].len / 8 != ln.n) {
        return refused(&v, "lse_rest: the sizes do not agree");
    }
    const double *terms = v.view[0].buf, *count = v.view[1].buf;
    double *rest = v.view[2].buf;
    for (Py_ssize_t i = 0; i < ln.n; i++) {
        double r = sum_of(terms + i * ln.line, ln.m, ln.step, ln.pairwise);
        rest[i] = r == 0.0 ? r : r / count[i];
    }
    release(&v);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"ancestor_rows", ancestor_rows, METH_VARARGS, ancestor_rows_doc},
    {"ancestor_products", ancestor_products, METH_VARARGS, ancestor_products_doc},
    {"pair_likelihoods", pair_likelihoods, METH_VARARGS, pair_likelihoods_doc},
    {"rate_posteriors", rate_posteriors, METH_VARARGS, rate_posteriors_doc},
    {"entropy", entropy, METH_VARARGS, entropy_doc},
    {"entropy_exact", entropy_exact, METH_VARARGS, entropy_exact_doc},
    {"first_best", first_best, METH_VARARGS, first_best_doc},
    {"lab_scores", lab_scores, METH_VARARGS, lab_scores_doc},
    {"sum_scores", sum_scores, METH_VARARGS, sum_scores_doc},
    {"lse_shift", lse_shift, METH_VARARGS, lse_shift_doc},
    {"lse_all", lse_all, METH_VARARGS, lse_all_doc},
    {"split_pairs", split_pairs, METH_VARARGS, split_pairs_doc},
    {"lse_rest", lse_rest, METH_VARARGS, lse_rest_doc},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "bisectlab._kernels",
    .m_doc = "Compiled twins of bisectlab's hottest numpy passes, bit for bit.",
    .m_size = -1,
    .m_methods = methods,
};

/* Raised with every change to what a kernel takes or does: compiled.py uses only the version it
 * was written for, so a module left from an older build is not called with another layout. */
#define KERNELS_VERSION 8

PyMODINIT_FUNC PyInit__kernels(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "version", KERNELS_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
