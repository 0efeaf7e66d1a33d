#include "kbench.h"
int main(void) { return 0; }
