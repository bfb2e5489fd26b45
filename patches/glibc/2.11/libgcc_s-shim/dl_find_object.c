/* _dl_find_object (glibc 2.35) for the target host's libgcc_s.so.1.

   glibc 2.11 loads libgcc_s.so.1 for pthread_cancel, pthread_exit and
   backtrace. The one made for the host is the build machine's gcc unwinder
   (libgcc_eh.a) linked against the host's libc; that unwinder finds a
   program counter's unwind tables with _dl_find_object and gives up when
   it fails. This is the same lookup on top of dl_iterate_phdr (glibc
   2.2.4): the object whose loaded segments hold the address, and its
   PT_GNU_EH_FRAME. A stub that fails leaves the unwinder with no FDE even
   for its own frame, and pthread_cancel and backtrace abort the process.

   Compiled with the build machine's headers (their struct dl_find_object
   is the one libgcc_eh.a reads), linked into libgcc_s.so.1 against the
   built glibc 2.11, and kept local there by the library's version script. */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct lookup
{
  uintptr_t pc;
  struct dl_find_object *result;
  int found;
};

/* The link_map the result points to: only its l_addr is read. */
static __thread struct link_map found_map;

static int
visit (struct dl_phdr_info *info, size_t size, void *data)
{
  struct lookup *l = data;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  const ElfW(Phdr) *eh = NULL;
  int inside = 0;
  (void) size;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++)
    {
      const ElfW(Phdr) *p = &info->dlpi_phdr[i];
      uintptr_t start = info->dlpi_addr + p->p_vaddr;
      if (p->p_type == PT_LOAD)
        {
          if (start < lo)
            lo = start;
          if (start + p->p_memsz > hi)
            hi = start + p->p_memsz;
          if (l->pc >= start && l->pc < start + p->p_memsz)
            inside = 1;
        }
      else if (p->p_type == PT_GNU_EH_FRAME)
        eh = p;
    }
  if (!inside)
    return 0;
  memset (l->result, 0, sizeof *l->result);
  found_map.l_addr = info->dlpi_addr;
  l->result->dlfo_map_start = (void *) lo;
  l->result->dlfo_map_end = (void *) hi;
  l->result->dlfo_link_map = &found_map;
  l->result->dlfo_eh_frame
    = eh != NULL ? (void *) (info->dlpi_addr + eh->p_vaddr) : NULL;
  l->found = 1;
  return 1;
}

int
_dl_find_object (void *pc, struct dl_find_object *result)
{
  struct lookup l = { (uintptr_t) pc, result, 0 };
  dl_iterate_phdr (visit, &l);
  return l.found ? 0 : -1;
}
