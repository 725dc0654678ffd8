/* scan.c - placeholder */
typedef int llmgate_placeholder_scan;
