/*
 * Optional C speedups: amqp_client.wire's field tables and arrays, and the
 * generated classes' decoders and properties encoder.
 *
 * wire.py is the reference implementation and stays the only one that
 * reports errors. Each function here handles the common case and returns
 * None for anything else (an unusual type, a value out of range, malformed
 * input, deep nesting): the caller then runs the Python code on the same
 * input, which produces the value or raises the documented error. So these
 * functions never raise for bad input (only MemoryError), and whatever they
 * return is exactly what the Python code returns for the same input; the
 * tests hold them to that on generated and random input.
 *
 * Field tables: encoding covers dict tables with str keys and values of the
 * exact types str, int, bool, float, bytes, bytearray, None, dict, list and
 * tuple; decoding covers every tag but D (decimal) and T (timestamp), on
 * bytes. The generated classes: their arguments and content properties are
 * decoded, and content properties encoded, by the layouts the generator
 * writes (timestamps left to Python).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* The layout kinds and frame constants, written by the generator from the
 * same tables it writes the Python layouts with (generated/spec.h; setup.py
 * puts generated/ on the include path). */
#include "spec.h"

/* Deeper nesting is left to the Python code (which also detects a table
 * that contains itself). */
#define MAX_DEPTH 32

/* -- encoding --------------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t size;
    Py_ssize_t capacity;
} Out;

static int
out_reserve(Out *out, Py_ssize_t extra)
{
    if (out->size + extra <= out->capacity) {
        return 0;
    }
    Py_ssize_t capacity = out->capacity ? out->capacity : 256;
    while (capacity < out->size + extra) {
        if (capacity > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        capacity *= 2;
    }
    char *data = PyMem_Realloc(out->data, (size_t)capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    out->data = data;
    out->capacity = capacity;
    return 0;
}

static void
put_u32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static void
put_u64(char *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

/* Results of the encoders: 0 done, 1 not handled here, -1 Python error. */
#define DONE 0
#define DECLINE 1
#define FAIL -1

static int encode_value(Out *out, PyObject *value, int depth);

/* A shortstr: an exact str of at most 255 bytes in UTF-8. */
static int
encode_shortstr(Out *out, PyObject *value)
{
    if (!PyUnicode_CheckExact(value)) {
        return DECLINE;
    }
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(value, &n);
    if (text == NULL) { /* a lone surrogate */
        PyErr_Clear();
        return DECLINE;
    }
    if (n > 255) {
        return DECLINE;
    }
    if (out_reserve(out, 1 + n) < 0) {
        return FAIL;
    }
    out->data[out->size] = (char)n;
    memcpy(out->data + out->size + 1, text, (size_t)n);
    out->size += 1 + n;
    return DONE;
}

/* A length-prefixed block: reserve the 4 bytes, fill them in at the end. */
static int
encode_items(Out *out, PyObject *container, int depth)
{
    if (depth > MAX_DEPTH) {
        return DECLINE;
    }
    if (out_reserve(out, 4) < 0) {
        return FAIL;
    }
    Py_ssize_t start = out->size;
    out->size += 4;
    if (PyDict_CheckExact(container)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(container, &pos, &key, &value)) {
            int r = encode_shortstr(out, key);
            if (r != DONE) {
                return r;
            }
            r = encode_value(out, value, depth);
            if (r != DONE) {
                return r;
            }
        }
    }
    else {
        /* A list or tuple: its items must not change while we read them,
         * and they cannot, as no Python code runs here. */
        Py_ssize_t count = PySequence_Fast_GET_SIZE(container);
        PyObject **items = PySequence_Fast_ITEMS(container);
        for (Py_ssize_t i = 0; i < count; i++) {
            int r = encode_value(out, items[i], depth);
            if (r != DONE) {
                return r;
            }
        }
    }
    Py_ssize_t length = out->size - start - 4;
    if ((uint64_t)length > 0xFFFFFFFFu) {
        return DECLINE;
    }
    put_u32(out->data + start, (uint32_t)length);
    return DONE;
}

static int
encode_blob(Out *out, char tag, const char *data, Py_ssize_t n)
{
    if ((uint64_t)n > 0xFFFFFFFFu) {
        return DECLINE;
    }
    if (out_reserve(out, 5 + n) < 0) {
        return FAIL;
    }
    char *p = out->data + out->size;
    p[0] = tag;
    put_u32(p + 1, (uint32_t)n);
    memcpy(p + 5, data, (size_t)n);
    out->size += 5 + n;
    return DONE;
}

static int
encode_value(Out *out, PyObject *value, int depth)
{
    PyTypeObject *type = Py_TYPE(value);
    if (type == &PyUnicode_Type) {
        Py_ssize_t n;
        const char *text = PyUnicode_AsUTF8AndSize(value, &n);
        if (text == NULL) {
            PyErr_Clear();
            return DECLINE;
        }
        return encode_blob(out, 'S', text, n);
    }
    if (type == &PyBool_Type) {
        if (out_reserve(out, 2) < 0) {
            return FAIL;
        }
        out->data[out->size] = 't';
        out->data[out->size + 1] = value == Py_True ? 1 : 0;
        out->size += 2;
        return DONE;
    }
    if (type == &PyLong_Type) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return DECLINE;
        }
        if (out_reserve(out, 9) < 0) {
            return FAIL;
        }
        char *p = out->data + out->size;
        if (v >= INT32_MIN && v <= INT32_MAX) {
            p[0] = 'I';
            put_u32(p + 1, (uint32_t)(int32_t)v);
            out->size += 5;
        }
        else {
            p[0] = 'l';
            put_u64(p + 1, (uint64_t)(int64_t)v);
            out->size += 9;
        }
        return DONE;
    }
    if (type == &PyFloat_Type) {
        if (out_reserve(out, 9) < 0) {
            return FAIL;
        }
        char *p = out->data + out->size;
        p[0] = 'd';
        if (PyFloat_Pack8(PyFloat_AS_DOUBLE(value), p + 1, 0) < 0) {
            PyErr_Clear();
            return DECLINE;
        }
        out->size += 9;
        return DONE;
    }
    if (type == &PyBytes_Type) {
        return encode_blob(
            out, 'x', PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value));
    }
    if (type == &PyByteArray_Type) {
        return encode_blob(
            out, 'x', PyByteArray_AS_STRING(value), PyByteArray_GET_SIZE(value));
    }
    if (value == Py_None) {
        if (out_reserve(out, 1) < 0) {
            return FAIL;
        }
        out->data[out->size++] = 'V';
        return DONE;
    }
    if (type == &PyDict_Type || type == &PyList_Type || type == &PyTuple_Type) {
        if (out_reserve(out, 1) < 0) {
            return FAIL;
        }
        out->data[out->size++] = type == &PyDict_Type ? 'F' : 'A';
        return encode_items(out, value, depth + 1);
    }
    return DECLINE;
}

/* What an encoder returns for its result r, its buffer freed: the bytes
 * (DONE), None (DECLINE) or NULL with the error set (FAIL). */
static PyObject *
out_result(Out *out, int r)
{
    PyObject *result;
    if (r == DONE) {
        result = PyBytes_FromStringAndSize(out->data, out->size);
    }
    else if (r == DECLINE) {
        result = Py_NewRef(Py_None);
    }
    else {
        result = NULL;
    }
    PyMem_Free(out->data);
    return result;
}

static PyObject *
encode_block(PyObject *value, PyTypeObject *expected)
{
    if (Py_TYPE(value) != expected
        && !(expected == &PyList_Type && PyTuple_CheckExact(value))) {
        Py_RETURN_NONE;
    }
    Out out = {NULL, 0, 0};
    return out_result(&out, encode_items(&out, value, 0));
}

static PyObject *
sp_encode_table(PyObject *module, PyObject *value)
{
    return encode_block(value, &PyDict_Type);
}

static PyObject *
sp_encode_array(PyObject *module, PyObject *value)
{
    return encode_block(value, &PyList_Type);
}

/* -- decoding --------------------------------------------------------------- */

typedef struct {
    const unsigned char *data;
    Py_ssize_t size;
    PyObject *names;       /* wire.NAMES: bytes -> str */
    Py_ssize_t names_max;  /* emptied when it reaches this many entries */
} In;

static uint32_t
get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* Results: a new reference; NULL with no error set to decline; NULL with an
 * error set to fail. */
#define DECLINED NULL

static PyObject *decode_block(In *in, Py_ssize_t *offset, int is_table, int depth);

/* The value whose tag is at *offset; advances *offset past it. Bounds are
 * checked against the whole buffer; the caller checks the block's end. */
static PyObject *
decode_value(In *in, Py_ssize_t *offset, int depth)
{
    Py_ssize_t o = *offset;
    const unsigned char *d = in->data;
    Py_ssize_t left = in->size - o - 1; /* bytes after the tag */
    if (left < 0) {
        return DECLINED;
    }
    const unsigned char *p = d + o + 1;
    PyObject *v;
    switch (d[o]) {
    case 'S':
    case 'x': {
        if (left < 4) {
            return DECLINED;
        }
        uint32_t n = get_u32(p);
        if ((uint64_t)n > (uint64_t)(left - 4)) {
            return DECLINED;
        }
        if (d[o] == 'S') {
            v = PyUnicode_DecodeUTF8((const char *)p + 4, n, NULL);
            if (v == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    return NULL;
                }
                PyErr_Clear(); /* binary data under S: kept as bytes */
                v = PyBytes_FromStringAndSize((const char *)p + 4, n);
            }
        }
        else {
            v = PyBytes_FromStringAndSize((const char *)p + 4, n);
        }
        *offset = o + 5 + n;
        return v;
    }
    case 'I':
        if (left < 4) {
            return DECLINED;
        }
        *offset = o + 5;
        return PyLong_FromLong((long)(int32_t)get_u32(p));
    case 'i':
        if (left < 4) {
            return DECLINED;
        }
        *offset = o + 5;
        return PyLong_FromUnsignedLong((unsigned long)get_u32(p));
    case 'l':
    case 'L':
        if (left < 8) {
            return DECLINED;
        }
        *offset = o + 9;
        return PyLong_FromLongLong((long long)(int64_t)get_u64(p));
    case 't':
        if (left < 1) {
            return DECLINED;
        }
        *offset = o + 2;
        return Py_NewRef(p[0] ? Py_True : Py_False);
    case 'b':
        if (left < 1) {
            return DECLINED;
        }
        *offset = o + 2;
        return PyLong_FromLong((long)(int8_t)p[0]);
    case 'B':
        if (left < 1) {
            return DECLINED;
        }
        *offset = o + 2;
        return PyLong_FromLong((long)p[0]);
    case 's':
        if (left < 2) {
            return DECLINED;
        }
        *offset = o + 3;
        return PyLong_FromLong((long)(int16_t)((uint16_t)p[0] << 8 | p[1]));
    case 'u':
        if (left < 2) {
            return DECLINED;
        }
        *offset = o + 3;
        return PyLong_FromLong((long)((uint16_t)p[0] << 8 | p[1]));
    case 'f': {
        if (left < 4) {
            return DECLINED;
        }
        double x = PyFloat_Unpack4((const char *)p, 0);
        if (x == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        *offset = o + 5;
        return PyFloat_FromDouble(x);
    }
    case 'd': {
        if (left < 8) {
            return DECLINED;
        }
        double x = PyFloat_Unpack8((const char *)p, 0);
        if (x == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        *offset = o + 9;
        return PyFloat_FromDouble(x);
    }
    case 'V':
        *offset = o + 1;
        Py_RETURN_NONE;
    case 'F':
    case 'A':
        *offset = o + 1;
        return decode_block(in, offset, d[o] == 'F', depth + 1);
    default: /* D, T and unknown tags: the Python code decides */
        return DECLINED;
    }
}

/* The name for the key bytes, shared through wire.NAMES. */
static PyObject *
decode_name(In *in, const unsigned char *p, Py_ssize_t n)
{
    PyObject *raw = PyBytes_FromStringAndSize((const char *)p, n);
    if (raw == NULL) {
        return NULL;
    }
    PyObject *name = PyDict_GetItemWithError(in->names, raw);
    if (name != NULL) {
        Py_DECREF(raw);
        return Py_NewRef(name);
    }
    if (PyErr_Occurred()) {
        Py_DECREF(raw);
        return NULL;
    }
    name = PyUnicode_DecodeUTF8((const char *)p, n, NULL);
    if (name == NULL) {
        Py_DECREF(raw);
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            return DECLINED;
        }
        return NULL;
    }
    if (PyDict_GET_SIZE(in->names) >= in->names_max) {
        PyDict_Clear(in->names);
    }
    int r = PyDict_SetItem(in->names, raw, name);
    Py_DECREF(raw);
    if (r < 0) {
        Py_DECREF(name);
        return NULL;
    }
    return name;
}

static PyObject *
decode_block(In *in, Py_ssize_t *offset, int is_table, int depth)
{
    if (depth > MAX_DEPTH) {
        return DECLINED;
    }
    Py_ssize_t o = *offset;
    if (in->size - o < 4) {
        return DECLINED;
    }
    uint32_t length = get_u32(in->data + o);
    if ((uint64_t)length > (uint64_t)(in->size - o - 4)) {
        return DECLINED;
    }
    Py_ssize_t end = o + 4 + (Py_ssize_t)length;
    o += 4;
    PyObject *result = is_table ? PyDict_New() : PyList_New(0);
    if (result == NULL) {
        return NULL;
    }
    while (o < end) {
        PyObject *key = NULL;
        if (is_table) {
            Py_ssize_t n = in->data[o];
            if (o + 1 + n >= in->size) { /* the key, then at least a tag */
                goto decline;
            }
            key = decode_name(in, in->data + o + 1, n);
            if (key == NULL) {
                goto fail_or_decline;
            }
            o += 1 + n;
        }
        PyObject *value = decode_value(in, &o, depth);
        if (value == NULL) {
            Py_XDECREF(key);
            goto fail_or_decline;
        }
        int r = is_table ? PyDict_SetItem(result, key, value)
                         : PyList_Append(result, value);
        Py_XDECREF(key);
        Py_DECREF(value);
        if (r < 0) {
            Py_DECREF(result);
            return NULL;
        }
    }
    if (o != end) {
        goto decline;
    }
    *offset = o;
    return result;
fail_or_decline:
    Py_DECREF(result);
    return NULL; /* an error stays set; a decline has none */
decline:
    Py_DECREF(result);
    return DECLINED;
}

static PyObject *
decode_entry(PyObject *const *args, Py_ssize_t nargs, int is_table)
{
    if (nargs != 4 || !PyBytes_CheckExact(args[0]) || !PyLong_CheckExact(args[1])
        || !PyDict_CheckExact(args[2]) || !PyLong_CheckExact(args[3])) {
        PyErr_SetString(
            PyExc_TypeError, "expected (bytes, offset, names dict, names max)");
        return NULL;
    }
    Py_ssize_t offset = PyLong_AsSsize_t(args[1]);
    Py_ssize_t names_max = PyLong_AsSsize_t(args[3]);
    if ((offset == -1 || names_max == -1) && PyErr_Occurred()) {
        return NULL;
    }
    In in = {
        (const unsigned char *)PyBytes_AS_STRING(args[0]),
        PyBytes_GET_SIZE(args[0]),
        args[2],
        names_max,
    };
    if (offset < 0 || offset > in.size) {
        Py_RETURN_NONE;
    }
    PyObject *value = decode_block(&in, &offset, is_table, 0);
    if (value == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *end = PyLong_FromSsize_t(offset);
    if (end == NULL) {
        Py_DECREF(value);
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, value, end);
    Py_DECREF(value);
    Py_DECREF(end);
    return pair;
}

static PyObject *
sp_decode_table(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return decode_entry(args, nargs, 1);
}

static PyObject *
sp_decode_array(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return decode_entry(args, nargs, 0);
}

/* -- method arguments and content properties ----------------------------- */

/* A generated class's wire layout, as _spec_base.c_layout builds it:
 * (descriptors, kinds, names, names_max). kinds has one byte per wire field
 * and descriptors the slot each is stored in (None: a reserved field, read
 * and dropped). Kinds (the KIND_* macros of generated/spec.h):
 *   n  shortstr shared through names    s  shortstr
 *   r  reserved shortstr, skipped        S  longstr (bytes)
 *   B H I Q  octet, short, long, longlong (unsigned)
 *   0..7  a bit at that position (0 reads the next octet)
 *   t  field table                       T  timestamp (left to Python)
 * For properties, field k is present when flag bit 15 - k is set.
 */

typedef struct {
    PyObject *descrs;   /* tuple */
    const char *kinds;
    Py_ssize_t count;
    In in;
} Layout;

static int
layout_from(PyObject *layout, PyObject *buf, Layout *out)
{
    if (!PyTuple_CheckExact(layout) || PyTuple_GET_SIZE(layout) != 4) {
        PyErr_SetString(PyExc_TypeError, "bad layout");
        return -1;
    }
    PyObject *descrs = PyTuple_GET_ITEM(layout, 0);
    PyObject *kinds = PyTuple_GET_ITEM(layout, 1);
    PyObject *names = PyTuple_GET_ITEM(layout, 2);
    PyObject *names_max = PyTuple_GET_ITEM(layout, 3);
    if (!PyTuple_CheckExact(descrs) || !PyBytes_CheckExact(kinds)
        || PyTuple_GET_SIZE(descrs) != PyBytes_GET_SIZE(kinds)
        || !PyDict_CheckExact(names) || !PyLong_CheckExact(names_max)) {
        PyErr_SetString(PyExc_TypeError, "bad layout");
        return -1;
    }
    out->descrs = descrs;
    out->kinds = PyBytes_AS_STRING(kinds);
    out->count = PyBytes_GET_SIZE(kinds);
    out->in.data = (const unsigned char *)PyBytes_AS_STRING(buf);
    out->in.size = PyBytes_GET_SIZE(buf);
    out->in.names = names;
    out->in.names_max = PyLong_AsSsize_t(names_max);
    if (out->in.names_max == -1 && PyErr_Occurred()) {
        return -1;
    }
    return 0;
}

/* Store a new reference in obj's slot (or drop it for a reserved field). */
static int
store(PyObject *descr, PyObject *obj, PyObject *value)
{
    int r = 0;
    if (descr != Py_None) {
        descrsetfunc set = Py_TYPE(descr)->tp_descr_set;
        r = set == NULL ? -1 : set(descr, obj, value);
        if (set == NULL) {
            PyErr_SetString(PyExc_TypeError, "layout slot is not a descriptor");
        }
    }
    Py_DECREF(value);
    return r;
}

/* One field at *offset, of the given kind; a new reference, or NULL to
 * decline (no error set) or fail (error set). Reads within the buffer; the
 * caller checks where the fields end. *bits carries the current bit octet. */
static PyObject *
decode_field(Layout *L, char kind, Py_ssize_t *offset, int *bits)
{
    In *in = &L->in;
    Py_ssize_t o = *offset;
    Py_ssize_t left = in->size - o;
    const unsigned char *p = in->data + o;
    switch (kind) {
    case KIND_NAME:
    case KIND_SHORTSTR:
    case KIND_RESERVED_SHORTSTR: {
        if (left < 1 || p[0] > left - 1) {
            return DECLINED;
        }
        Py_ssize_t n = p[0];
        *offset = o + 1 + n;
        if (kind == KIND_NAME) {
            return decode_name(in, p + 1, n);
        }
        if (kind == KIND_RESERVED_SHORTSTR) {
            Py_RETURN_NONE;
        }
        PyObject *v = PyUnicode_DecodeUTF8((const char *)p + 1, n, NULL);
        if (v == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
        }
        return v;
    }
    case KIND_LONGSTR: {
        if (left < 4) {
            return DECLINED;
        }
        uint32_t n = get_u32(p);
        if ((uint64_t)n > (uint64_t)(left - 4)) {
            return DECLINED;
        }
        *offset = o + 4 + n;
        return PyBytes_FromStringAndSize((const char *)p + 4, n);
    }
    case KIND_OCTET:
        if (left < 1) {
            return DECLINED;
        }
        *offset = o + 1;
        return PyLong_FromLong((long)p[0]);
    case KIND_SHORT:
        if (left < 2) {
            return DECLINED;
        }
        *offset = o + 2;
        return PyLong_FromLong((long)((uint16_t)p[0] << 8 | p[1]));
    case KIND_LONG:
        if (left < 4) {
            return DECLINED;
        }
        *offset = o + 4;
        return PyLong_FromUnsignedLong((unsigned long)get_u32(p));
    case KIND_LONGLONG:
        if (left < 8) {
            return DECLINED;
        }
        *offset = o + 8;
        return PyLong_FromUnsignedLongLong((unsigned long long)get_u64(p));
    case KIND_TABLE:
        return decode_block(in, offset, 1, 0);
    default:
        if (kind >= KIND_BIT0 && kind <= KIND_BIT0 + 7) {
            if (kind == KIND_BIT0) {
                if (left < 1) {
                    return DECLINED;
                }
                *bits = p[0];
                *offset = o + 1;
            }
            return Py_NewRef((*bits >> (kind - KIND_BIT0)) & 1 ? Py_True : Py_False);
        }
        return DECLINED; /* T, and anything unknown */
    }
}

/* Declined, or failed with an error set: NULL either way, obj released. */
static PyObject *
give_up(PyObject *obj)
{
    Py_DECREF(obj);
    return NULL;
}

static PyObject *
decode_object(PyObject *const *args, Py_ssize_t nargs, int properties)
{
    if (nargs != 5 || !PyType_Check(args[0]) || !PyLong_CheckExact(args[3])
        || !PyLong_CheckExact(args[4])) {
        PyErr_SetString(
            PyExc_TypeError, "expected (cls, layout, buf, offset, end)");
        return NULL;
    }
    PyObject *buf = args[2];
    if (!PyBytes_CheckExact(buf)) {
        Py_RETURN_NONE;
    }
    Layout L;
    if (layout_from(args[1], buf, &L) < 0) {
        return NULL;
    }
    Py_ssize_t offset = PyLong_AsSsize_t(args[3]);
    Py_ssize_t end = PyLong_AsSsize_t(args[4]);
    if ((offset == -1 || end == -1) && PyErr_Occurred()) {
        return NULL;
    }
    if (offset < 0 || end < offset || end > L.in.size) {
        Py_RETURN_NONE;
    }
    unsigned int flags = 0;
    if (properties) {
        if (L.count > 15 || end - offset < 2) {
            Py_RETURN_NONE;
        }
        flags = (unsigned int)L.in.data[offset] << 8 | L.in.data[offset + 1];
        if (flags & ((1u << (16 - L.count)) - 1)) {
            Py_RETURN_NONE; /* unknown flags: Python reports them */
        }
        offset += 2;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    PyObject *obj = cls->tp_alloc(cls, 0);
    if (obj == NULL) {
        return NULL;
    }
    int bits = 0;
    for (Py_ssize_t k = 0; k < L.count; k++) {
        PyObject *value;
        if (properties && !(flags & (0x8000u >> k))) {
            value = Py_NewRef(Py_None);
        }
        else {
            value = decode_field(&L, L.kinds[k], &offset, &bits);
            if (value == NULL) {
                return give_up(obj);
            }
        }
        if (store(PyTuple_GET_ITEM(L.descrs, k), obj, value) < 0) {
            return give_up(obj);
        }
    }
    if (offset != end) {
        Py_DECREF(obj);
        Py_RETURN_NONE;
    }
    return obj;
}

static PyObject *
finish(PyObject *result)
{
    /* NULL without an error is a decline: None to the caller. */
    if (result == NULL && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return result;
}

static PyObject *
sp_decode_fields(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return finish(decode_object(args, nargs, 0));
}

static PyObject *
sp_decode_properties(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return finish(decode_object(args, nargs, 1));
}

/* -- content properties, encoding ------------------------------------------ */

/* Encode one present property of the given kind; DONE, DECLINE or FAIL. */
static int
encode_property(Out *out, char kind, PyObject *value)
{
    PyTypeObject *type = Py_TYPE(value);
    switch (kind) {
    case KIND_NAME:
    case KIND_SHORTSTR:
        return encode_shortstr(out, value);
    case KIND_LONGSTR:
        if (type != &PyBytes_Type) {
            return DECLINE;
        }
        if ((uint64_t)PyBytes_GET_SIZE(value) > 0xFFFFFFFFu) {
            return DECLINE;
        }
        if (out_reserve(out, 4 + PyBytes_GET_SIZE(value)) < 0) {
            return FAIL;
        }
        put_u32(out->data + out->size, (uint32_t)PyBytes_GET_SIZE(value));
        memcpy(out->data + out->size + 4, PyBytes_AS_STRING(value),
               (size_t)PyBytes_GET_SIZE(value));
        out->size += 4 + PyBytes_GET_SIZE(value);
        return DONE;
    case KIND_OCTET:
    case KIND_SHORT:
    case KIND_LONG:
    case KIND_LONGLONG: {
        if (type != &PyLong_Type) {
            return DECLINE;
        }
        int width = kind == KIND_OCTET ? 1 : kind == KIND_SHORT ? 2 : kind == KIND_LONG ? 4 : 8;
        unsigned long long v = PyLong_AsUnsignedLongLong(value);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear(); /* negative or over 64 bits */
            return DECLINE;
        }
        if (width < 8 && v >> (8 * width)) {
            return DECLINE;
        }
        if (out_reserve(out, width) < 0) {
            return FAIL;
        }
        for (int i = width - 1; i >= 0; i--) {
            out->data[out->size++] = (char)(v >> (8 * i));
        }
        return DONE;
    }
    case KIND_TABLE:
        if (type != &PyDict_Type) {
            return DECLINE;
        }
        return encode_items(out, value, 0);
    default: /* T (timestamps) and anything else: left to Python */
        return DECLINE;
    }
}

static PyObject *
sp_encode_properties(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (properties, layout)");
        return NULL;
    }
    PyObject *obj = args[0];
    PyObject *layout = args[1];
    if (!PyTuple_CheckExact(layout) || PyTuple_GET_SIZE(layout) != 4
        || !PyTuple_CheckExact(PyTuple_GET_ITEM(layout, 0))
        || !PyBytes_CheckExact(PyTuple_GET_ITEM(layout, 1))
        || PyTuple_GET_SIZE(PyTuple_GET_ITEM(layout, 0))
               != PyBytes_GET_SIZE(PyTuple_GET_ITEM(layout, 1))) {
        PyErr_SetString(PyExc_TypeError, "bad layout");
        return NULL;
    }
    PyObject *descrs = PyTuple_GET_ITEM(layout, 0);
    const char *kinds = PyBytes_AS_STRING(PyTuple_GET_ITEM(layout, 1));
    Py_ssize_t count = PyTuple_GET_SIZE(descrs);
    if (count > 15) {
        Py_RETURN_NONE;
    }
    Out out = {NULL, 0, 0};
    if (out_reserve(&out, 64) < 0) {
        return NULL;
    }
    out.size = 2; /* the flags, filled in at the end */
    unsigned int flags = 0;
    int r = DONE;
    for (Py_ssize_t k = 0; k < count && r == DONE; k++) {
        PyObject *descr = PyTuple_GET_ITEM(descrs, k);
        descrgetfunc get = Py_TYPE(descr)->tp_descr_get;
        if (get == NULL) {
            r = DECLINE;
            break;
        }
        PyObject *value = get(descr, obj, (PyObject *)Py_TYPE(obj));
        if (value == NULL) { /* an unset slot: Python reports it */
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                r = FAIL;
                break;
            }
            PyErr_Clear();
            r = DECLINE;
            break;
        }
        if (value != Py_None) {
            flags |= 0x8000u >> k;
            r = encode_property(&out, kinds[k], value);
        }
        Py_DECREF(value);
    }
    if (r == DONE) {
        out.data[0] = (char)(flags >> 8);
        out.data[1] = (char)flags;
    }
    return out_result(&out, r);
}

/* -- content properties, validating ----------------------------------------- */

/* A name or shortstr this module accepts without decoding: ASCII only (the
 * Python decoder accepts any UTF-8; anything else is left to it). */
static int
is_ascii(const unsigned char *p, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] & 0x80) {
            return 0;
        }
    }
    return 1;
}

static int check_block(const unsigned char *d, Py_ssize_t size, Py_ssize_t *offset,
                       int is_table, int depth);

/* The field value whose tag is at *offset: 1 and *offset past it when it
 * is well formed, 0 when unsure. */
static int
check_value(const unsigned char *d, Py_ssize_t size, Py_ssize_t *offset, int depth)
{
    Py_ssize_t o = *offset;
    Py_ssize_t left = size - o - 1;
    if (left < 0) {
        return 0;
    }
    Py_ssize_t need;
    switch (d[o]) {
    case 'S':
    case 'x': {
        if (left < 4) {
            return 0;
        }
        uint32_t n = get_u32(d + o + 1);
        if ((uint64_t)n > (uint64_t)(left - 4)) {
            return 0;
        }
        *offset = o + 5 + (Py_ssize_t)n;
        return 1;
    }
    case 'I': case 'i': case 'f': need = 4; break;
    case 'l': case 'L': case 'd': case 'T': need = 8; break;
    case 't': case 'b': case 'B': need = 1; break;
    case 's': case 'u': need = 2; break;
    case 'D': need = 5; break;
    case 'V': need = 0; break;
    case 'F':
    case 'A':
        *offset = o + 1;
        return check_block(d, size, offset, d[o] == 'F', depth + 1);
    default:
        return 0;
    }
    if (left < need) {
        return 0;
    }
    *offset = o + 1 + need;
    return 1;
}

static int
check_block(const unsigned char *d, Py_ssize_t size, Py_ssize_t *offset,
            int is_table, int depth)
{
    if (depth > MAX_DEPTH) {
        return 0;
    }
    Py_ssize_t o = *offset;
    if (size - o < 4) {
        return 0;
    }
    uint32_t length = get_u32(d + o);
    if ((uint64_t)length > (uint64_t)(size - o - 4)) {
        return 0;
    }
    Py_ssize_t end = o + 4 + (Py_ssize_t)length;
    o += 4;
    while (o < end) {
        if (is_table) {
            Py_ssize_t n = d[o];
            if (o + 1 + n >= end || !is_ascii(d + o + 1, n)) {
                return 0;
            }
            o += 1 + n;
        }
        if (!check_value(d, end, &o, depth)) {
            return 0;
        }
    }
    if (o != end) {
        return 0;
    }
    *offset = o;
    return 1;
}

/* check_properties(kinds, buf, offset, end) -> bool: True when the
 * property flags and properties in buf[offset:end] are well formed for the
 * kinds (as _spec_base.property_kinds writes them), so that the Python
 * decoder will decode them without an error; False when unsure (malformed
 * or merely unusual: the caller then decodes at once, which decides). No
 * object is made: this is what lets a delivery's properties be decoded
 * lazily and still be refused, with the connection, on arrival. */
static int
check_properties(const char *kinds, Py_ssize_t count, const unsigned char *d,
                 Py_ssize_t size, Py_ssize_t o, Py_ssize_t end)
{
    if (count > 15 || o < 0 || end < o || end > size || end - o < 2) {
        return 0;
    }
    unsigned int flags = (unsigned int)d[o] << 8 | d[o + 1];
    if (flags & ((1u << (16 - count)) - 1)) {
        return 0;
    }
    o += 2;
    for (Py_ssize_t k = 0; k < count; k++) {
        if (!(flags & (0x8000u >> k))) {
            continue;
        }
        Py_ssize_t left = end - o;
        Py_ssize_t need;
        switch (kinds[k]) {
        case 's':
            if (left < 1 || d[o] > left - 1 || !is_ascii(d + o + 1, d[o])) {
                return 0;
            }
            o += 1 + d[o];
            continue;
        case 'S': {
            if (left < 4) {
                return 0;
            }
            uint32_t n = get_u32(d + o);
            if ((uint64_t)n > (uint64_t)(left - 4)) {
                return 0;
            }
            o += 4 + (Py_ssize_t)n;
            continue;
        }
        case 't':
            if (!check_block(d, end, &o, 1, 0)) {
                return 0;
            }
            continue;
        case 'B': need = 1; break;
        case 'H': need = 2; break;
        case 'I': need = 4; break;
        case 'Q': case 'T': need = 8; break;
        default:
            return 0;
        }
        if (left < need) {
            return 0;
        }
        o += need;
    }
    if (o != end) {
        return 0;
    }
    return 1;
}

static int
unpack_range(PyObject *const *args, Py_ssize_t *offset, Py_ssize_t *end)
{
    if (!PyLong_CheckExact(args[0]) || !PyLong_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "offset and end must be ints");
        return -1;
    }
    *offset = PyLong_AsSsize_t(args[0]);
    *end = PyLong_AsSsize_t(args[1]);
    if ((*offset == -1 || *end == -1) && PyErr_Occurred()) {
        return -1;
    }
    return 0;
}

static PyObject *
sp_check_properties(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyBytes_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "expected (kinds, buf, offset, end)");
        return NULL;
    }
    Py_ssize_t o, end;
    if (unpack_range(args + 2, &o, &end) < 0) {
        return NULL;
    }
    if (!PyBytes_CheckExact(args[1])) {
        Py_RETURN_FALSE;
    }
    return PyBool_FromLong(check_properties(
        PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]),
        (const unsigned char *)PyBytes_AS_STRING(args[1]),
        PyBytes_GET_SIZE(args[1]), o, end));
}

/* lazy_properties(cls, raw_slot, kinds, decode, buf, offset, end): when
 * check_properties passes, a new cls instance (a lazy subclass, see
 * _spec_base.lazy_decoder) holding buf[offset:end] in raw_slot, its other
 * slots unset; otherwise decode(buf, offset, end), which decodes at once
 * (and raises for malformed input). */
static PyObject *
sp_lazy_properties(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyType_Check(args[0]) || !PyBytes_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "expected (cls, raw_slot, kinds, decode, buf, offset, end)");
        return NULL;
    }
    Py_ssize_t o, end;
    if (unpack_range(args + 5, &o, &end) < 0) {
        return NULL;
    }
    PyObject *buf = args[4];
    if (PyBytes_CheckExact(buf)
        && check_properties(PyBytes_AS_STRING(args[2]), PyBytes_GET_SIZE(args[2]),
                            (const unsigned char *)PyBytes_AS_STRING(buf),
                            PyBytes_GET_SIZE(buf), o, end)) {
        PyTypeObject *cls = (PyTypeObject *)args[0];
        PyObject *obj = cls->tp_alloc(cls, 0);
        if (obj == NULL) {
            return NULL;
        }
        PyObject *raw = PyBytes_FromStringAndSize(PyBytes_AS_STRING(buf) + o, end - o);
        if (raw == NULL || store(args[1], obj, raw) < 0) {
            Py_DECREF(obj);
            return NULL;
        }
        return obj;
    }
    return PyObject_Vectorcall(args[3], args + 4, 3, NULL);
}

/* decode_fields_or(cls, layout, decode, buf, offset, end): decode_fields,
 * or when it declines, decode(buf, offset, end) (the generated Python
 * decoder, which decides or raises). What the frame reader calls per method
 * frame, without a Python call in between. */
static PyObject *
decode_or(PyObject *const *args, Py_ssize_t nargs, int properties)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "expected (cls, layout, decode, buf, offset, end)");
        return NULL;
    }
    PyObject *fields_args[5] = {args[0], args[1], args[3], args[4], args[5]};
    PyObject *obj = finish(decode_object(fields_args, 5, properties));
    if (obj != Py_None) {
        return obj; /* the object, or NULL with an error set */
    }
    Py_DECREF(obj);
    return PyObject_Vectorcall(args[2], args + 3, 3, NULL);
}

static PyObject *
sp_decode_fields_or(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return decode_or(args, nargs, 0);
}

/* The same for content properties (decode_properties, else decode). */
static PyObject *
sp_decode_properties_or(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return decode_or(args, nargs, 1);
}

/* fill_slots(obj, source, slots): for each member descriptor in `slots`
 * (object slots of a class both are instances of), give obj's slot
 * source's value where obj's is unset. No Python code runs meanwhile, so
 * another thread sees the slots all unset or all filled. How a lazily
 * decoded properties object takes its decoded values (see
 * _spec_base.lazy_decoder) without an exception per unset slot. */
/* The address of the object slot a member descriptor of obj's class
 * stands for, or NULL with an error set. */
static PyObject **
slot_of(PyObject *obj, PyObject *descr)
{
    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyErr_SetString(PyExc_TypeError, "not a member descriptor");
        return NULL;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX || !PyObject_TypeCheck(obj, PyDescr_TYPE(descr))) {
        PyErr_SetString(PyExc_TypeError, "not an object slot of this object");
        return NULL;
    }
    return (PyObject **)((char *)obj + member->offset);
}

static int
fill_slots(PyObject *obj, PyObject *source, PyObject *slots)
{
    if (!PyTuple_CheckExact(slots)) {
        PyErr_SetString(PyExc_TypeError, "slots must be a tuple");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(slots); i++) {
        PyObject *descr = PyTuple_GET_ITEM(slots, i);
        PyObject **target = slot_of(obj, descr);
        PyObject **value = target == NULL ? NULL : slot_of(source, descr);
        if (value == NULL) {
            return -1;
        }
        if (*target == NULL && *value != NULL) {
            *target = Py_NewRef(*value);
        }
    }
    return 0;
}

static PyObject *
sp_fill_slots(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "expected (obj, source, slots)");
        return NULL;
    }
    if (fill_slots(args[0], args[1], args[2]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* fill_lazy(raw_slot, decode, slots, obj): when obj's raw_slot holds bytes,
 * decode(raw, 0, len(raw)), give obj's unset slots the decoded values
 * (fill_slots) and set raw_slot to None; nothing once it is None. The
 * first read of a lazily decoded properties object, in one call. */
static PyObject *
sp_fill_lazy(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "expected (raw_slot, decode, slots, obj)");
        return NULL;
    }
    PyObject *obj = args[3];
    PyObject **raw_slot = slot_of(obj, args[0]);
    if (raw_slot == NULL) {
        return NULL;
    }
    PyObject *raw = *raw_slot;
    if (raw == NULL || !PyBytes_CheckExact(raw)) {
        Py_RETURN_NONE;
    }
    Py_INCREF(raw);
    PyObject *call_args[3] = {raw, PyLong_FromLong(0),
                              PyLong_FromSsize_t(PyBytes_GET_SIZE(raw))};
    PyObject *decoded = NULL;
    if (call_args[1] != NULL && call_args[2] != NULL) {
        decoded = PyObject_Vectorcall(args[1], call_args, 3, NULL);
    }
    Py_XDECREF(call_args[1]);
    Py_XDECREF(call_args[2]);
    Py_DECREF(raw);
    if (decoded == NULL) {
        return NULL;
    }
    int r = fill_slots(obj, decoded, args[2]);
    Py_DECREF(decoded);
    if (r < 0) {
        return NULL;
    }
    /* Last: a thread that finds None knows every property is set. */
    PyObject *old = *raw_slot;
    *raw_slot = Py_NewRef(Py_None);
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

/* -- the frame reader's content fast path ----------------------------------- */

/* content_tail(data, hpos, channel, class_id, limit, decode_properties,
 *              frame_cls, slots, method):
 * the content header frame at data[hpos:] and the one body frame after it
 * (none for an empty body), when both are complete and well framed on
 * `channel`, the header of `class_id`, the body frame exactly the declared
 * body size and no payload over `limit`. Returns (frame, next): frame a new
 * frame_cls instance whose slots (channel, method, properties, body) are
 * set through the member descriptors in `slots`, its properties
 * decode_properties(data, start, end); next the offset after the last
 * frame. None for anything else, which the Python reader then takes frame
 * by frame (and reports). The same checks as the Python code in
 * FrameReader._parse, in one call. */
static PyObject *
sp_content_tail(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9 || !PyBytes_CheckExact(args[0]) || !PyLong_CheckExact(args[1])
        || !PyLong_CheckExact(args[2]) || !PyLong_CheckExact(args[3])
        || !PyLong_CheckExact(args[4]) || !PyType_Check(args[6])
        || !PyTuple_CheckExact(args[7]) || PyTuple_GET_SIZE(args[7]) != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "expected (data, hpos, channel, class_id, limit, decode, "
                        "frame_cls, slots, method)");
        return NULL;
    }
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t hpos = PyLong_AsSsize_t(args[1]);
    long channel = PyLong_AsLong(args[2]);
    long class_id = PyLong_AsLong(args[3]);
    long long limit = PyLong_AsLongLong(args[4]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (hpos < 0 || n - hpos < 22) {
        Py_RETURN_NONE;
    }
    const unsigned char *h = d + hpos;
    uint32_t hsize = get_u32(h + 3);
    Py_ssize_t hend = hpos + 7 + (Py_ssize_t)hsize;
    if (h[0] != AMQP_FRAME_HEADER || ((long)h[1] << 8 | h[2]) != channel
        || ((long)h[7] << 8 | h[8]) != class_id || hsize < 14
        || (long long)hsize > limit || hend >= n || d[hend] != AMQP_FRAME_END) {
        Py_RETURN_NONE;
    }
    uint64_t body_size = get_u64(h + 11);
    Py_ssize_t bstart = hend, bend = hend; /* an empty body: no frame */
    if (body_size) {
        Py_ssize_t bpos = hend + 1;
        if (n - bpos < 8) {
            Py_RETURN_NONE;
        }
        const unsigned char *b = d + bpos;
        uint32_t bsize = get_u32(b + 3);
        bend = bpos + 7 + (Py_ssize_t)bsize;
        if (b[0] != AMQP_FRAME_BODY || ((long)b[1] << 8 | b[2]) != channel
            || (uint64_t)bsize != body_size || (long long)bsize > limit
            || bend >= n || d[bend] != AMQP_FRAME_END) {
            Py_RETURN_NONE;
        }
        bstart = bpos + 7;
    }
    PyObject *call_args[3];
    call_args[0] = args[0];
    call_args[1] = PyLong_FromSsize_t(hpos + 19);
    call_args[2] = PyLong_FromSsize_t(hend);
    PyObject *props = NULL;
    if (call_args[1] != NULL && call_args[2] != NULL) {
        props = PyObject_Vectorcall(args[5], call_args, 3, NULL);
    }
    Py_XDECREF(call_args[1]);
    Py_XDECREF(call_args[2]);
    if (props == NULL) {
        return NULL;
    }
    PyObject *body = PyBytes_FromStringAndSize((const char *)d + bstart, bend - bstart);
    if (body == NULL) {
        Py_DECREF(props);
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[6];
    PyObject *frame = cls->tp_alloc(cls, 0);
    if (frame == NULL) {
        Py_DECREF(props);
        Py_DECREF(body);
        return NULL;
    }
    PyObject *slots = args[7];
    /* store() takes the value's reference, whether it succeeds or not. */
    int failed = store(PyTuple_GET_ITEM(slots, 0), frame, Py_NewRef(args[2])) < 0;
    failed = failed || store(PyTuple_GET_ITEM(slots, 1), frame, Py_NewRef(args[8])) < 0;
    if (failed) {
        Py_DECREF(props);
        Py_DECREF(body);
        Py_DECREF(frame);
        return NULL;
    }
    if (store(PyTuple_GET_ITEM(slots, 2), frame, props) < 0) {
        Py_DECREF(body);
        Py_DECREF(frame);
        return NULL;
    }
    if (store(PyTuple_GET_ITEM(slots, 3), frame, body) < 0) {
        Py_DECREF(frame);
        return NULL;
    }
    PyObject *next = PyLong_FromSsize_t(bend + 1);
    if (next == NULL) {
        Py_DECREF(frame);
        return NULL;
    }
    PyObject *result = PyTuple_New(2);
    if (result == NULL) {
        Py_DECREF(frame);
        Py_DECREF(next);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, frame);
    PyTuple_SET_ITEM(result, 1, next);
    return result;
}

static PyMethodDef methods[] = {
    {"encode_table", sp_encode_table, METH_O,
     "encode_table(table) -> bytes | None: a dict's encoding with its length "
     "prefix, or None to leave it to wire.encode_table."},
    {"encode_array", sp_encode_array, METH_O,
     "encode_array(items) -> bytes | None: a list's or tuple's encoding with "
     "its length prefix, or None to leave it to wire.encode_array."},
    {"decode_table", (PyCFunction)(void (*)(void))sp_decode_table, METH_FASTCALL,
     "decode_table(buf, offset, names, names_max) -> (dict, end) | None"},
    {"decode_array", (PyCFunction)(void (*)(void))sp_decode_array, METH_FASTCALL,
     "decode_array(buf, offset, names, names_max) -> (list, end) | None"},
    {"encode_properties", (PyCFunction)(void (*)(void))sp_encode_properties,
     METH_FASTCALL,
     "encode_properties(properties, layout) -> bytes | None: property flags "
     "and the present properties"},
    {"decode_fields", (PyCFunction)(void (*)(void))sp_decode_fields, METH_FASTCALL,
     "decode_fields(cls, layout, buf, offset, end) -> cls instance | None: a "
     "method's arguments filling buf[offset:end]"},
    {"decode_properties", (PyCFunction)(void (*)(void))sp_decode_properties,
     METH_FASTCALL,
     "decode_properties(cls, layout, buf, offset, end) -> cls instance | None: "
     "property flags and properties filling buf[offset:end]"},
    {"check_properties", (PyCFunction)(void (*)(void))sp_check_properties,
     METH_FASTCALL,
     "check_properties(kinds, buf, offset, end) -> bool: True when the "
     "property flags and properties in buf[offset:end] will decode"},
    {"lazy_properties", (PyCFunction)(void (*)(void))sp_lazy_properties,
     METH_FASTCALL,
     "lazy_properties(cls, raw_slot, kinds, decode, buf, offset, end) -> "
     "properties: undecoded when well formed, else decode(buf, offset, end)"},
    {"fill_slots", (PyCFunction)(void (*)(void))sp_fill_slots, METH_FASTCALL,
     "fill_slots(obj, source, slots) -> None: obj's unset slots from source"},
    {"fill_lazy", (PyCFunction)(void (*)(void))sp_fill_lazy, METH_FASTCALL,
     "fill_lazy(raw_slot, decode, slots, obj) -> None: decode obj's kept "
     "bytes into its unset slots, once"},
    {"decode_fields_or", (PyCFunction)(void (*)(void))sp_decode_fields_or,
     METH_FASTCALL,
     "decode_fields_or(cls, layout, decode, buf, offset, end) -> cls instance: "
     "decode_fields, or decode(buf, offset, end) where it declines"},
    {"decode_properties_or", (PyCFunction)(void (*)(void))sp_decode_properties_or,
     METH_FASTCALL,
     "decode_properties_or(cls, layout, decode, buf, offset, end) -> cls "
     "instance: decode_properties, or decode(buf, offset, end) where it declines"},
    {"content_tail", (PyCFunction)(void (*)(void))sp_content_tail, METH_FASTCALL,
     "content_tail(data, hpos, channel, class_id, limit, decode, frame_cls, "
     "slots, method) -> (frame, next) | None: a content method's header and "
     "its one body frame, as one frame"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "amqp_client._speedups",
    "Optional C versions of wire's field-table codecs (see wire.py).",
    0,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module);
}
