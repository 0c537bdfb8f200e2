"""Make zeroc-ice 3.6.5's getFunction() build on CPython 3.11.

PyThreadState.frame is gone in 3.11; PyThreadState_GetFrame() returns a new
reference that has to be released once f_code has been read.
"""
import sys

OLD_FRAME = "PyFrameObject *f = PyThreadState_GET()->frame;"
NEW_FRAME = "PyFrameObject *f = PyThreadState_GetFrame(PyThreadState_GET());"
CODE_LINE = 'PyObjectHandle code = PyObject_GetAttrString(reinterpret_cast<PyObject*>(f), STRCAST("f_code"));'


def main(path):
    with open(path) as handle:
        text = handle.read()
    if NEW_FRAME in text:
        return 0
    if OLD_FRAME not in text or CODE_LINE not in text:
        sys.stderr.write("%s: getFunction() is not the 3.6.5 text this patch expects\n" % path)
        return 1
    text = text.replace(OLD_FRAME, NEW_FRAME)
    text = text.replace(CODE_LINE, CODE_LINE + "\n    Py_XDECREF(f);")
    with open(path, "w") as handle:
        handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
