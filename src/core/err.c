#include "core.h"

const char *core_strerror(int err)
{
    switch (err) {
    case CORE_OK:
        return "success";
#define CORE__ERR_MSG(name, val, msg) case (val): return (msg);
        CORE_ERRNO_MAP(CORE__ERR_MSG)
#undef CORE__ERR_MSG
    }
    return "unknown error";
}

const char *core_err_name(int err)
{
    switch (err) {
    case CORE_OK:
        return "CORE_OK";
#define CORE__ERR_NAME(name, val, msg) case (val): return "CORE_E" #name;
        CORE_ERRNO_MAP(CORE__ERR_NAME)
#undef CORE__ERR_NAME
    }
    return "unknown error";
}
