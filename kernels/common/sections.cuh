// Longest-first order across sections of rows, shared by the Hopper forward's tile scheduler and
// the Hopper backward's CTA remap (sm90/scheduler.cuh Scheduler::section, sm90/bwd_config.cuh
// Work::sectioned). Causal work items differ in length along a row (a head's query or key blocks);
// handing them out row by row, each row longest first, leaves the last rows' long items for the
// end. Within a section of `sec` rows the order is instead position 0 (the longest) of every row,
// then position 1, and so on, so only the last section's items make the tail.
#pragma once
#include "types.cuh"

// Item u of `rows` rows x `per_row` positions, in sections of `sec` rows (the last may have
// fewer): its row and its position along the row.
FC_DEVICE void section_order(int u, int per_row, int rows, int sec, int& row, int& pos) {
  const int base = u / (sec * per_row) * sec;
  const int n = min(sec, rows - base);
  const int r = u - base * per_row;
  pos = r / n;
  row = base + (r - pos * n);
}
