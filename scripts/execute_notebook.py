"""Executes one notebook with Jupyter's own machinery (nbclient), cell by cell.

Used by `npm run notebooks` (bin/notebooks.ts). The failing cell's message is
read from its stderr (the stock tslab kernel's error replies carry no ename/evalue/traceback;
the project's kernel adds them) and printed with the notebook, the cell's position (0-based,
markdown cells included) and its execution count.

usage: execute_notebook.py SOURCE.ipynb DEST.ipynb [--timeout SECONDS] [--kernel NAME]
exit: 0 all cells ran, 1 a cell failed (DEST holds the outputs so far), 2 bad usage
"""
import argparse
import os
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError
from nbformat.sign import NotebookNotary


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('source')
    parser.add_argument('dest')
    parser.add_argument('--timeout', type=int, default=1800)
    parser.add_argument('--kernel', default='tslab')
    args = parser.parse_args()

    nb = nbformat.read(args.source, as_version=4)
    # Kernels start in the notebook's own folder, as in an interactive session.
    client = NotebookClient(nb, kernel_name=args.kernel, timeout=args.timeout,
                            resources={'metadata': {'path': os.path.dirname(os.path.abspath(args.source))}})
    failed = None
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != 'code':
                continue
            try:
                client.execute_cell(cell, index)
            except (CellExecutionError, CellTimeoutError) as err:
                stderr = ''.join(o.get('text', '') for o in cell.get('outputs', []) if o.get('name') == 'stderr')
                errors = [f"{o.get('ename', '')}: {o.get('evalue', '')}" for o in cell.get('outputs', []) if o.get('output_type') == 'error']
                message = stderr.strip() or '\n'.join(e for e in errors if e.strip(': ')) or str(err).strip()
                failed = (index, cell.get('execution_count'), cell.source, message)
                break
    os.makedirs(os.path.dirname(os.path.abspath(args.dest)), exist_ok=True)
    if not failed:
        # Outputs we produced ourselves: sign the copy so that the classic notebook runs its
        # scripts (interactive Plotly charts) when it is opened.
        NotebookNotary().sign(nb)
    nbformat.write(nb, args.dest)
    if failed:
        index, count, source, message = failed
        first = '\n'.join(source.splitlines()[:6])
        prompt = f' (In [{count}])' if count else ''
        print(f'{args.source}: cell {index}{prompt} failed; the cells after it were not run:\n'
              f'--- cell source ---\n{first}\n--- error ---\n{message}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
