defmodule Corral.Test.Counter do
  @moduledoc false
  # A Collectable that counts bytes and keeps none of them, so a test can
  # stream gigabytes without building the binary. With `:pause_every` set,
  # it sleeps `:pause_ms` after each that many bytes: a slow consumer.

  defstruct bytes: 0, pause_every: nil, pause_ms: 0

  defimpl Collectable do
    def into(%{pause_every: nil} = counter) do
      {counter.bytes,
       fn
         n, {:cont, data} -> n + IO.iodata_length(data)
         n, :done -> n
         _, :halt -> :ok
       end}
    end

    def into(%{pause_every: every, pause_ms: ms} = counter) do
      {{counter.bytes, 0},
       fn
         {n, since}, {:cont, data} ->
           size = IO.iodata_length(data)

           if since + size >= every do
             Process.sleep(ms)
             {n + size, 0}
           else
             {n + size, since + size}
           end

         {n, _}, :done ->
           n

         _, :halt ->
           :ok
       end}
    end
  end
end
